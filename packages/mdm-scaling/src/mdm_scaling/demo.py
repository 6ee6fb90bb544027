"""The tour's demo: a miniature of the paper's two headline experiments, offline.

1. IsoFLOP sweep (Sec. 3.1, Fig. 1): MDM and ARM character models of 2k–19k non-embedding parameters (one
   family: 2 layers, width 8–24) trained on the bundled corpus at three FLOP budgets; per arch the fitted
   L*(C) = A·C^−alpha and N*(C) ∝ C^beta, the compute gap between them, and the IsoFLOP/frontier plots.
2. Reverse curse (Sec. 5, Table 3): both archs trained on the same synthetic "NAME is DESCRIPTION." facts, asked in
   the trained and in the reversed order.

The numbers are a miniature (tiny models, minutes of CPU), not the paper's.
"""

from __future__ import annotations

from pathlib import Path

from gen_common.cli import RunContext
from gen_common.demo import DemoContext, DemoResult, Table
from mdm_scaling.config import SweepConfig
from mdm_scaling.runs import FitRun, ReverseRun, SweepRun, fit, reverse, sweep
from mdm_scaling.scaling import compute_gap, fit_scaling_laws, read_runs

# The presets are the commands' own configs: `mdm-scaling sweep`, `fit` and `reverse` with these values are the demo.
SMALL = dict(
    # One model family (2 layers, width 8–24) and budgets at which the compute-optimal size lies inside it: the
    # minima sit near 3–4k, 5–8k and 8–10k parameters, i.e. at ~150–300 tokens per parameter (the MDM and ARM
    # alike at this scale). Sized for the tour: budgets halved and tiny-19k dropped against the earlier preset
    # (about 0.55× its CPU time); a smaller sweep (budgets 5e9–2e10, batch 32) left the MDM fit meaningless (alpha
    # 0.03, a 10^5× "gap"). Runs buying more than 1200 steps are skipped; 256 windows × 32 draws keep the Monte
    # Carlo noise of the MDM bound at ~0.01 nats.
    sweep=SweepRun(
        resume=False,
        sweep=SweepConfig(
            budgets=(7.5e9, 1.5e10, 3e10),
            sizes=("tiny-2k", "tiny-5k", "tiny-8k", "tiny-13k"),
            batch_size=64,
            length=32,
            lr=1e-2,
            min_steps=50,
            max_steps=1200,
            eval_windows=256,
            eval_samples=32,
        ),
    ),
    # 12 facts, which the MDM learns in 600 steps (24 needed 1000; at 500 it had learned none).
    reverse=ReverseRun(facts=12, preset="tiny-49k", steps=600, batch_size=32, lr=1e-2, sample_steps=16),
)
LARGE = dict(
    # Every budget buys 100–20000 steps for at least four sizes (the old 1e11/3e11 budgets bought that for fewer
    # than three, so only one IsoFLOP curve, too few to fit, was left).
    sweep=SweepRun(
        resume=False,
        sweep=SweepConfig(
            budgets=(2e11, 6e11, 2e12),
            sizes=("tiny-8k", "tiny-13k", "tiny-19k", "tiny-33k", "tiny-66k", "tiny-148k"),
            batch_size=64,
            length=128,
            lr=3e-3,
            min_steps=100,
            max_steps=20000,
            eval_windows=128,
            eval_samples=64,
        ),
    ),
    reverse=ReverseRun(facts=60, preset="tiny-148k", steps=4000, batch_size=64, lr=5e-3, sample_steps=16),
)


def _plot_reverse(rows, path):
    from gen_common.plotting import new_figure, save_figure

    fig, ax = new_figure(size=(5.6, 3.4))
    keys = ["same", "reverse", "reverse_infill"]
    labels = ["trained order", "reversed prompt", "reverse as infilling"]
    width = 0.38
    for j, r in enumerate(rows):
        vals = [r.get(k, float("nan")) for k in keys]
        xs = [i + (j - 0.5) * width for i in range(len(keys))]
        ax.bar(xs, [0 if v != v else v for v in vals], width, label=r["arch"].upper())
        for x, v in zip(xs, vals):
            ax.text(x, (0 if v != v else v) + 0.02, "n/a" if v != v else f"{v:.2f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(keys)), labels)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("accuracy")
    ax.set_title("reverse curse, synthetic facts (miniature)")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def run_demo(ctx: DemoContext) -> DemoResult:
    p = LARGE if ctx.scale == "large" else SMALL
    run_ctx = RunContext(
        device=str(ctx.device), seed=ctx.seed, out=ctx.out_dir, overwrite=True, progress=ctx.progress
    )
    swept = sweep(p["sweep"], run_ctx)
    csv_path = swept.csv
    rows = read_runs(csv_path)
    fits = fit(FitRun(runs=csv_path), run_ctx)  # laws, compute gaps and the two plots
    figs = [Path(f) for f in fits["figures"]]
    budgets = p["sweep"].sweep.budgets
    mid = sorted(budgets)[len(budgets) // 2]
    per_budget = {float(c): g for c, g in fits["compute_gap"]["mdm"]["per_budget"].items()}
    if float(mid) in per_budget:
        gap = per_budget[float(mid)]
    else:  # the middle budget bought no run in range: the gap at it still follows from the two fitted laws
        laws = fit_scaling_laws(rows)
        gap = compute_gap(laws["arm"], laws["mdm"], mid)
    # The gap extrapolates one fitted law to the other's optimum: with fewer than two IsoFLOP minima bracketed
    # per arch the exponents are rough at this scale, and so is the gap, so the demo says so instead of
    # presenting the number as a finding.
    archs = ("mdm", "arm")
    reliable = all(fits[a]["bracketed"] >= 2 for a in archs)
    gap_text = (
        f"the MDM needs {gap:.3g}× the ARM's compute for the ARM's optimal loss at C = {mid:.2g}"
        if reliable
        else f"the compute gap at C = {mid:.2g} ({gap:.3g}×) is not reliable at this scale (fewer than two "
        "bracketed IsoFLOP minima per arch)"
    )

    res = reverse(p["reverse"], run_ctx)
    figs.append(_plot_reverse(res.rows, ctx.path("reverse_curse.png")))
    by_arch = {r["arch"]: r for r in res.rows}
    rev = {"num_facts": p["reverse"].facts}
    sweep_cfg = p["sweep"].sweep

    law_rows = [[a, fits[a]["A"], fits[a]["alpha"], fits[a]["beta"], fits[a]["bracketed"], fits[a]["budgets"]]
                for a in sorted(archs)]  # fmt: skip
    iso_rows = [
        [r["arch"], r["size"], r["budget"], r["params"], r["steps"], r["loss"]]
        for r in sorted(rows, key=lambda r: (r["arch"], r["budget"], r["params"]))
    ]
    rev_rows = [
        [r["arch"], r["same"], r["reverse"], r.get("reverse_infill", "n/a (causal)")] for r in res.rows
    ]
    metrics = {
        "runs": len(rows),
        "alpha_mdm": fits["mdm"]["alpha"],
        "alpha_arm": fits["arm"]["alpha"],
        "beta_mdm": fits["mdm"]["beta"],
        "beta_arm": fits["arm"]["beta"],
        f"compute_gap_mdm_vs_arm_at_{mid:.2g}": gap,
        "compute_gap_reliable": reliable,
        "reverse_same_mdm": by_arch["mdm"]["same"],
        "reverse_same_arm": by_arch["arm"]["same"],
        "reverse_reversed_mdm": by_arch["mdm"]["reverse"],
        "reverse_reversed_arm": by_arch["arm"]["reverse"],
        "reverse_infill_mdm": by_arch["mdm"]["reverse_infill"],
        "csv": str(csv_path),
    }
    summary = (
        f"Miniature IsoFLOP sweep ({len(rows)} runs, {len(sweep_cfg.budgets)} budgets, character models of "
        f"{sweep_cfg.sizes[0]}…{sweep_cfg.sizes[-1]} non-embedding parameters on the bundled corpus): "
        f"L*_MDM ∝ C^-{fits['mdm']['alpha']:.3f}, L*_ARM ∝ C^-{fits['arm']['alpha']:.3f}; {gap_text} "
        "(the paper: ~16× at 1e18–1e20 FLOPs). "
        f"Reverse curse on {rev['num_facts']} synthetic facts: trained order MDM {by_arch['mdm']['same']:.2f} / "
        f"ARM {by_arch['arm']['same']:.2f}; reversed prompt MDM {by_arch['mdm']['reverse']:.2f} / ARM "
        f"{by_arch['arm']['reverse']:.2f}; the reverse question posed as infilling, which only the MDM can "
        f"answer: {by_arch['mdm']['reverse_infill']:.2f}. These are tiny CPU models, not the paper's numbers."
    )
    return DemoResult(
        title="SMDM: masked diffusion vs autoregressive LMs (IsoFLOP laws, reverse curse)",
        summary=summary,
        metrics=metrics,
        tables=[
            Table(
                "fitted laws (miniature)",
                ["arch", "A", "alpha", "beta", "bracketed minima", "budgets"],
                law_rows,
            ),
            Table(
                "reverse curse accuracy",
                ["arch", "trained order", "reversed prompt", "reverse infill"],
                rev_rows,
            ),
            Table("IsoFLOP runs", ["arch", "size", "budget C", "N", "steps", "val loss"], iso_rows),
        ],
        figures=figs,
        headline={
            "claim": "masked diffusion LMs scale like autoregressive ones (similar IsoFLOP exponents) at a constant "
            "compute gap, and answer reversed questions where ARMs fail (the reverse curse)",
            "paper": "L*_MDM ≈ 50.2·C^−0.0625 vs L*_ARM ≈ 45.6·C^−0.0642: ~16× compute gap; the 1.1B MDM answers "
            "the reverse direction, ARMs (even GPT-3 175B) do not",
            "measured": f"α_MDM {fits['mdm']['alpha']:.3f}, α_ARM {fits['arm']['alpha']:.3f}; gap {gap:.3g}× "
            + ("" if reliable else "(not reliable: < 2 bracketed minima per arch) ")
            + f"at C = {mid:.2g}; reversed facts: MDM as infilling {by_arch['mdm']['reverse_infill']:.2f} vs "
            f"ARM {by_arch['arm']['reverse']:.2f}",
            # The claim has three parts: similar exponents (within 30%), a gap within 10× of the paper's 16×, and
            # the reverse curse broken by the MDM (infilling beats the ARM's reversed prompt by 0.2 or more).
            "reproduces": reliable
            and abs(fits["mdm"]["alpha"] - fits["arm"]["alpha"]) <= 0.3 * fits["arm"]["alpha"]
            and 1.6 <= gap <= 160
            and by_arch["mdm"]["reverse_infill"] >= by_arch["arm"]["reverse"] + 0.2,
            "reason": (
                "reverse curse: "
                + (
                    "reproduced"
                    if by_arch["mdm"]["reverse_infill"] >= by_arch["arm"]["reverse"] + 0.2
                    else "not reproduced at this size"
                )
                + "; scaling: "
                + (
                    f"exponents {'similar' if abs(fits['mdm']['alpha'] - fits['arm']['alpha']) <= 0.3 * fits['arm']['alpha'] else 'not similar'}, "
                    f"gap {gap:.3g}× vs the paper's ~16× at 1e18–1e20 FLOPs (tiny MDMs learn far more slowly "
                    "per FLOP; three budgets over 4× are a short lever arm)"
                    if reliable
                    else "not measurable with models this small (the IsoFLOP minima are not bracketed)"
                )
            ),
        },
        captions={
            "isoflop.png": "Validation loss vs model size at each FLOP budget, MDM and ARM: each curve's minimum "
            "is the compute-optimal size.",
            "frontier.png": "Optimal loss vs compute with the fitted power laws: parallel lines mean the same "
            "exponent, the horizontal offset is the compute gap.",
            "reverse_curse.png": "Accuracy on facts asked in the trained order and reversed: only the MDM can "
            "answer the reversed question as infilling.",
        },
    )
