"""Generation speed against quality (Sec. 5, Fig. 3: an MDM with fewer sampling steps matches an ARM with KV cache
in quality while 1.4× faster). Both continue the same prompts to the same length; quality is the generative
negative log-likelihood (and perplexity) of the generated tokens under a reference ARM; wall-clock time includes
every network pass (the MDM through radd's cached sampler, the ARM with its KV cache, and without it for
reference). Unigram entropy of the samples is reported too: a low perplexity from repetitive text shows as a
low entropy.

What the numbers mean, so the comparison stays honest:

- ``nfe`` counts network evaluations of one sequence: with unsupervised CFG every sampler call runs the model on
  the conditional and the unconditional input, so it counts twice (radd's sampler counts calls of the guided
  wrapper as one);
- ``seconds`` is the fastest of ``repeats`` identical runs (same generator seed, hence the same tokens), after a
  warm-up, so a busy machine inflates it less;
- ``gen_nll_se`` is the standard error of ``gen_nll`` over the sampled sequences: "matched quality" within it is
  not a measured difference. `matched_quality_speedup` takes an explicit ``tolerance`` (nats per token) for that.
- The reference ARM is itself autoregressive; an independently trained one (another seed) keeps it from merely
  recognising the ARM's own samples, but generative perplexity still favours ARM-like text somewhat.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from gen_common.device import synchronize
from gen_common.seeding import make_generator, split_seed
from mdm_scaling.generation import arm_generate, mdm_generate
from mdm_scaling.objectives import arm_token_nll

__all__ = [
    "generative_nll",
    "generative_nll_per_sequence",
    "matched_quality_speedup",
    "quality_crossing",
    "speed_table",
    "unigram_entropy",
]


@torch.no_grad()
def generative_nll(reference: Any, tokens: torch.Tensor, prompt_len: int) -> float:
    """Mean −log p_ref of the generated tokens (positions >= prompt_len) given everything before them."""
    return float(generative_nll_per_sequence(reference, tokens, prompt_len).mean())


@torch.no_grad()
def generative_nll_per_sequence(reference: Any, tokens: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """(N,) mean −log p_ref per generated token of each sequence (positions >= prompt_len)."""
    if prompt_len < 1:
        raise ValueError("the reference ARM needs at least one prompt token")
    was = reference.training
    reference.eval()
    try:
        nll = arm_token_nll(reference, tokens.to(next(reference.parameters()).device))
    finally:
        reference.train(was)
    return nll[:, prompt_len - 1 :].mean(1).double().cpu()


def unigram_entropy(tokens: torch.Tensor) -> float:
    """Mean per-sequence entropy (nats) of the token histogram."""
    ents = []
    for row in tokens:
        counts = torch.bincount(row).double()
        p = counts[counts > 0] / counts.sum()
        ents.append(float(-(p * p.log()).sum()))
    return sum(ents) / len(ents)


def _timed(fn, device, repeats: int = 1) -> tuple[Any, float]:
    """(first output, fastest of ``repeats`` wall-clock times); ``fn`` must redraw its noise from a fresh generator
    each call so that every repeat does the same work."""
    out, best = None, float("inf")
    for i in range(max(1, repeats)):
        synchronize(device)
        t0 = time.perf_counter()
        res = fn()
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
        if i == 0:
            out = res
    return out, best


def speed_table(
    mdm: Any,
    arm: Any,
    reference: Any,
    prompts: torch.Tensor,
    length: int,
    *,
    mdm_steps: Sequence[int] = (8, 16, 32, 64),
    remasking: str = "random",
    temperature: float = 1.0,
    cfg: float = 0.0,
    seed: int = 0,
    include_uncached: bool = True,
    repeats: int = 3,
) -> list[dict[str, Any]]:
    """One row per method: ``method, steps, nfe, seconds, tokens_per_s, gen_nll, gen_nll_se, gen_ppl, entropy``.

    ``nfe``: network evaluations per sequence (two per guided call when ``cfg > 0``); ``seconds``: fastest of
    ``repeats`` runs of the whole batch.
    """
    if prompts.ndim != 2:
        raise ValueError(f"prompts must be (N, P) ids, got shape {tuple(prompts.shape)}")
    N, P = prompts.shape
    new = length - P
    if new < 1:
        raise ValueError(f"length {length} leaves no room after prompts of {P} tokens")
    dev = next(arm.parameters()).device
    prompts = prompts.to(dev)
    rows: list[dict[str, Any]] = []

    def record(method: str, steps: int, nfe: float, tokens: torch.Tensor, secs: float) -> None:
        per_seq = generative_nll_per_sequence(reference, tokens, P)
        g = float(per_seq.mean())
        se = float(per_seq.std() / math.sqrt(N)) if N > 1 else float("nan")
        rows.append(
            {
                "method": method,
                "steps": steps,
                "nfe": nfe,
                "seconds": secs,
                "tokens_per_s": N * new / secs,
                "gen_nll": g,
                "gen_nll_se": se,
                "gen_ppl": math.exp(g),
                "entropy": unigram_entropy(tokens[:, P:]),
            }
        )

    # Warm-up at the batch shapes timed below, so one-time costs (allocator growth, kernel selection for new
    # shapes) do not count against the first method timed.
    arm_generate(arm, prompts, 2, temperature=temperature, cache=True, generator=make_generator(seed))
    arm_generate(arm, prompts, 2, temperature=temperature, cache=False, generator=make_generator(seed))
    mdm_generate(mdm, prompts, length, 2, cfg=cfg, temperature=temperature, generator=make_generator(seed))

    for cached in (True, False) if include_uncached else (True,):
        out, secs = _timed(
            lambda c=cached: arm_generate(
                arm,
                prompts,
                new,
                temperature=temperature,
                cache=c,
                generator=make_generator(split_seed(seed, 1)),
            ),
            dev,
            repeats,
        )
        record("arm+kv-cache" if cached else "arm (no cache)", new, out.nfe, out.tokens, secs)
    passes = 2 if cfg > 0 else 1  # a guided call evaluates the conditional and the unconditional input
    for s in mdm_steps:

        def run(s=s) -> tuple[torch.Tensor, float]:
            o = mdm_generate(
                mdm, prompts, length, s, cfg=cfg, remasking=remasking, temperature=temperature,
                generator=make_generator(split_seed(seed, 2, s)),
            )  # fmt: skip
            return o.tokens, o.nfe

        (tokens, nfe), secs = _timed(run, dev, repeats)
        label = f"mdm ({remasking}" + (f", cfg {cfg:g})" if cfg > 0 else ")")
        record(label, s, nfe * passes, tokens, secs)
    return rows


def matched_quality_speedup(
    rows: Sequence[dict[str, Any]], arm_method: str = "arm+kv-cache", *, tolerance: float = 0.0
) -> dict[str, Any]:
    """The paper's comparison (Sec. 5, Fig. 3): the fastest MDM row whose generative NLL is at most the ARM's
    plus ``tolerance`` (nats per token; 0 = strictly no worse), and the ARM/MDM time ratio (> 1: the MDM is
    faster). ``speedup`` is None when no MDM setting reaches the ARM's quality; ``best_mdm_gen_nll`` and the
    ``gap`` to the ARM then say how far the closest one stayed."""
    arm = next((r for r in rows if r["method"] == arm_method), None)
    if arm is None:
        raise ValueError(f"no {arm_method!r} row to compare against")
    mdm = [r for r in rows if r["method"].startswith("mdm")]
    if not mdm:
        raise ValueError("no MDM rows to compare")
    closest = min(mdm, key=lambda r: r["gen_nll"])
    out: dict[str, Any] = {
        "arm_gen_nll": arm["gen_nll"],
        "arm_gen_nll_se": arm.get("gen_nll_se"),
        "tolerance": tolerance,
        "best_mdm_gen_nll": closest["gen_nll"],
        "best_mdm_steps": closest["steps"],
        "gap": closest["gen_nll"] - arm["gen_nll"],
        "matched_steps": None,
        "speedup": None,
    }
    ok = [r for r in mdm if r["gen_nll"] <= arm["gen_nll"] + tolerance]
    if ok:
        best = min(ok, key=lambda r: r["seconds"])
        out["matched_steps"] = best["steps"]
        out["speedup"] = arm["seconds"] / best["seconds"]
    out["crossing"] = quality_crossing(rows, arm_method, tolerance=tolerance)
    return out


def _se(row: dict[str, Any]) -> float:
    se = row.get("gen_nll_se")
    return 0.0 if se is None or not math.isfinite(se) else float(se)


def quality_crossing(
    rows: Sequence[dict[str, Any]], arm_method: str = "arm+kv-cache", *, tolerance: float = 0.0
) -> dict[str, Any]:
    """Where the MDM's quality curve crosses the ARM's (the paper's Fig. 3 read-off), with standard errors.

    The MDM rows (one per swept step count, sorted by steps) give generative NLL y(s) under one scorer; the ARM
    gives the level a (+ ``tolerance``). The crossing is the first step count where y falls to a: between the
    bracketing sweep points (s₀, y₀), (s₁, y₁) y is interpolated linearly in log s, so with u = (y₀ − a)/(y₀ − y₁)

        log s* = log s₀ + u·(log s₁ − log s₀),   log t* = log t₀ + u·(log t₁ − log t₀)   (t: seconds)

    and the speed-up at matched quality is t_ARM / t*. Standard errors by the delta method from the three
    independent NLL standard errors (∂u/∂y₀ = (a − y₁)/D², ∂u/∂y₁ = (y₀ − a)/D², ∂u/∂a = −1/D, D = y₀ − y₁);
    timing noise is not included (times are the fastest of repeated runs).

    ``status``: ``"crossed"`` (interpolated), ``"below_sweep"`` (the fewest steps swept already match: s* is at
    most that, the speed-up at least the one there), or ``"none"`` (no swept setting reaches the ARM; ``gap`` says
    by how much the closest stayed, in nats/token and in its standard errors).
    """
    arm = next((r for r in rows if r["method"] == arm_method), None)
    if arm is None:
        raise ValueError(f"no {arm_method!r} row to compare against")
    mdm = sorted((r for r in rows if r["method"].startswith("mdm")), key=lambda r: r["steps"])
    if not mdm:
        raise ValueError("no MDM rows to compare")
    a, se_a = arm["gen_nll"] + tolerance, _se(arm)
    out: dict[str, Any] = {"status": "none", "level": a, "level_se": se_a, "steps": None, "steps_se": None,
                           "seconds": None, "speedup": None, "speedup_se": None}  # fmt: skip
    if mdm[0]["gen_nll"] <= a:
        r = mdm[0]
        out.update(
            status="below_sweep",
            steps=r["steps"],
            seconds=r["seconds"],
            speedup=arm["seconds"] / r["seconds"],
        )
        return out
    for r0, r1 in itertools.pairwise(mdm):
        y0, y1 = r0["gen_nll"], r1["gen_nll"]
        if y1 > a:
            continue
        D = y0 - y1  # > 0: y0 > a >= y1
        u = (y0 - a) / D
        ls0, ls1 = math.log(r0["steps"]), math.log(r1["steps"])
        lt0, lt1 = math.log(r0["seconds"]), math.log(r1["seconds"])
        se_u = math.sqrt(
            ((a - y1) / D**2 * _se(r0)) ** 2 + ((y0 - a) / D**2 * _se(r1)) ** 2 + (se_a / D) ** 2
        )
        steps = math.exp(ls0 + u * (ls1 - ls0))
        secs = math.exp(lt0 + u * (lt1 - lt0))
        speedup = arm["seconds"] / secs
        out.update(
            status="crossed",
            steps=steps,
            steps_se=steps * abs(ls1 - ls0) * se_u,
            seconds=secs,
            speedup=speedup,
            speedup_se=speedup * abs(lt1 - lt0) * se_u,
        )
        return out
    closest = min(mdm, key=lambda r: r["gen_nll"])
    gap = closest["gen_nll"] - a
    se = math.hypot(_se(closest), se_a)
    out.update(gap=gap, gap_in_se=gap / se if se > 0 else float("inf"), closest_steps=closest["steps"])
    return out
