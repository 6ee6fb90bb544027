"""The tour's demo: train a tiny RADD on the bundled corpus, bound its NLL against the unigram baseline, sample
text, and measure NFE vs steps for the cached and uncached samplers against ``expected_nfe``."""

from __future__ import annotations

import time

import torch

import radd
from gen_common.demo import DemoContext, DemoResult, Table
from gen_common.plotting import new_figure, save_figure
from gen_common.training import TrainConfig
from radd.data import TokenData, load_text
from radd.model import RADD, RADDConfig
from radd.tokenizers import CharTokenizerAdapter
from radd.training import train_radd

SMALL = dict(
    length=64,
    hidden=64,
    layers=2,
    heads=4,
    steps=800,  # ~30 s of training on an idle 2-core CPU
    batch=32,
    lr=3e-3,
    nfe_steps=(4, 8, 16, 32, 64, 128, 256),
)
LARGE = dict(
    length=128,
    hidden=256,
    layers=4,
    heads=4,
    steps=3000,
    batch=64,
    lr=1e-3,
    nfe_steps=(8, 16, 32, 64, 128, 256, 512, 1024),
)


def run_demo(ctx: DemoContext) -> DemoResult:
    p = SMALL if ctx.scale == "small" else LARGE
    dev = ctx.device
    t_start = time.perf_counter()
    text = load_text()
    tok = CharTokenizerAdapter.from_corpus(text)
    data = TokenData.from_ids(tok.encode(text), p["length"])
    V, L = tok.vocab_size, p["length"]
    torch.manual_seed(ctx.seed)
    model = RADD(RADDConfig(vocab_size=V, max_length=L, hidden_size=p["hidden"], num_layers=p["layers"],
                            num_heads=p["heads"], dropout=0.0))  # fmt: skip
    t0 = time.perf_counter()
    res = train_radd(
        model,
        data.batch_fn(p["batch"]),
        TrainConfig(
            steps=p["steps"],
            lr=p["lr"],
            warmup_steps=20,
            schedule="cosine",
            min_lr_ratio=0.1,
            log_every=max(1, p["steps"] // 30),
            seed=ctx.seed,
        ),
        loss="lambda_dce",
        device=dev,
        show_progress=ctx.progress,
    )
    train_s = time.perf_counter() - t0
    model.eval()

    # Likelihood: the three estimators on the same validation windows, against the unigram baseline.
    val = data.val_windows(32).to(dev)
    baseline = data.unigram_baseline(val.cpu(), V)
    est_rows = []
    for est in ("k", "lambda", "t"):
        nll, se = radd.estimate_nll(
            model, val, 16, est, torch.Generator().manual_seed(ctx.seed), return_stderr=True
        )
        per_tok = float(nll.double().mean()) / L
        se_tok = float(se.double().pow(2).sum().sqrt()) / len(val) / L
        est_rows.append([est, round(per_tok, 4), round(se_tok, 4)])
    nll_k = est_rows[0][1]

    # Samples: unconditional (cached analytic sampler, L steps) and with a prefix.
    gen = torch.Generator().manual_seed(ctx.seed)
    uncond = radd.sample(model, 3, L, L, generator=gen, device=dev)
    prefix = tok.encode("The ")
    cond = radd.sample(model, 2, L, L, prefix=prefix, generator=gen, device=dev)
    ordered = radd.sample_ordered(model, 1, L, order="forward", generator=gen, device=dev)
    samples = [tok.decode(s) for s in torch.cat([uncond.tokens, cond.tokens, ordered.tokens]).cpu()]
    kinds = ["diffusion"] * 3 + ["diffusion, prefix 'The '"] * 2 + ["ordered (left to right)"]

    # NFE vs steps: cached and uncached, measured, against the formula; wall-clock alongside.
    nfe_rows = []
    for n in p["nfe_steps"]:
        timings = {}
        outs = {}
        for cache in (True, False):
            t1 = time.perf_counter()
            outs[cache] = radd.sample(
                model, 16, L, n, cache=cache, generator=torch.Generator().manual_seed(n), device=dev
            )
            timings[cache] = time.perf_counter() - t1
        same = bool(torch.equal(outs[True].tokens, outs[False].tokens))
        nfe_rows.append([n, round(radd.expected_nfe(n, L), 2), round(outs[True].nfe, 2), outs[False].nfe,
                         round(timings[False], 3), round(timings[True], 3), "yes" if same else "NO"])  # fmt: skip

    figures = []
    fig, ax = new_figure(1, 2, size=(10, 3.8))
    steps = [r[0] for r in nfe_rows]
    ax[0].plot(steps, [r[3] for r in nfe_rows], "s--", label="uncached (measured)")
    ax[0].plot(steps, [r[2] for r in nfe_rows], "o", label="cached (measured)")
    dense = torch.logspace(
        torch.log10(torch.tensor(float(steps[0]))), torch.log10(torch.tensor(float(steps[-1]))), 100
    )
    ax[0].plot(dense, [radd.expected_nfe(float(s), L) for s in dense], "-", label=f"n(1-(1-1/n)^{L})")
    ax[0].set(
        xscale="log",
        yscale="log",
        xlabel="sampling steps n",
        ylabel="NFE per sequence",
        title=f"NFE vs steps (L={L})",
    )
    ax[0].legend()
    ax[1].plot(steps, [r[4] for r in nfe_rows], "s--", label="uncached")
    ax[1].plot(steps, [r[5] for r in nfe_rows], "o-", label="cached")
    ax[1].set(
        xscale="log",
        yscale="log",
        xlabel="sampling steps n",
        ylabel="seconds (16 samples)",
        title="wall-clock",
    )
    ax[1].legend()
    figures.append(save_figure(fig, ctx.path("radd_nfe_vs_steps.png")))

    fig, ax = new_figure(1, 1, size=(5, 3.6))
    ax.plot(
        [h["step"] for h in res.history], [h["loss"] for h in res.history], label="λ-DCE (train, nats/token)"
    )
    ax.axhline(baseline, color="gray", ls="--", label=f"unigram baseline {baseline:.2f}")
    ax.axhline(nll_k, color="C2", ls=":", label=f"val NLL bound (k-DCE) {nll_k:.2f}")
    ax.set(xlabel="step", ylabel="nats/token", title="training")
    ax.legend()
    figures.append(save_figure(fig, ctx.path("radd_training.png")))

    last = nfe_rows[-1]
    return DemoResult(
        title="RADD: time-independent absorbing diffusion with a cached sampler",
        summary=(
            f"A {model.num_parameters() / 1e3:.0f}k-parameter RADD trained {p['steps']} steps with λ-DCE on the bundled "
            f"corpus ({train_s:.0f} s) bounds the validation NLL at {nll_k:.3f} nats/char (k-DCE), below the unigram "
            f"baseline {baseline:.3f}. Because the network has no time input, the sampler re-evaluates only sequences "
            f"that changed: at {last[0]} steps it needs {last[2]:.1f} evaluations per sequence "
            f"(formula {last[1]:.1f}) instead of {last[0]}, with identical samples."
        ),
        metrics={
            "val_nll_bound_k_dce": nll_k,
            "unigram_baseline": baseline,
            "params": model.num_parameters(),
            "train_steps": p["steps"],
            "train_seconds": train_s,
            "final_train_loss": res.final_loss,
            "total_seconds": time.perf_counter() - t_start,
        },
        tables=[
            Table("NLL bound on validation windows (nats/char)", ["estimator", "NLL", "MC stderr"], est_rows),
            Table(
                "NFE and wall-clock vs steps (16 samples)",
                [
                    "steps",
                    "expected NFE",
                    "cached NFE",
                    "uncached NFE",
                    "uncached s",
                    "cached s",
                    "identical",
                ],
                nfe_rows,
            ),
            Table("samples", ["sampler", "text"], [[k, s] for k, s in zip(kinds, samples)]),
        ],
        figures=figures,
        headline={
            "claim": "a time-independent network lets the sampler cache: NFE = n(1−(1−1/n)^L) < n steps, "
            "same samples; up to 3.5× faster than SEDD",
            "paper": "up to 3.5× faster; L = 1024: 1024 steps → ~648 NFE (1.58×), 4096 → ~908 (4.5×)",
            "measured": f"L = {L}, {last[0]} steps: {last[2]:.1f} NFE cached (formula {last[1]:.1f}, "
            f"{last[0] / last[2]:.2f}× fewer), identical samples: {last[6]}, "
            f"wall-clock {last[4] / max(last[5], 1e-9):.2f}×",
            "reproduces": last[6] == "yes" and abs(last[2] - last[1]) <= 0.05 * last[1],
            "reason": "the NFE formula and identical samples are checked; the 3.5× over SEDD needs GPT-2-scale "
            "models and is not measured here"
            if last[6] == "yes" and abs(last[2] - last[1]) <= 0.05 * last[1]
            else "the cached NFE is off the formula or the samples differ from the uncached sampler's",
        },
        captions={
            "radd_nfe_vs_steps.png": "Left: the cached sampler's NFE (dots) sit on the formula's curve, far below "
            "one evaluation per step (squares); right: wall-clock follows the NFE.",
            "radd_training.png": "λ-DCE training loss; it should end below the unigram baseline (dashed), with the "
            "validation NLL bound (dotted) close to it.",
        },
    )
