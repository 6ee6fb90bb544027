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
    return out
