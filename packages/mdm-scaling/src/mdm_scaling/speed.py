"""Generation speed against quality (Sec. 5, Fig. 3: an MDM with fewer sampling steps matches an ARM with KV cache
in quality while 1.4× faster). Both continue the same prompts to the same length; quality is the generative
negative log-likelihood (and perplexity) of the generated tokens under a reference ARM; wall-clock time includes
every network pass (the MDM through radd's cached sampler, the ARM with its KV cache, and without it for
reference). Unigram entropy of the samples is reported too: a low perplexity from repetitive text shows as a
low entropy."""

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

__all__ = ["generative_nll", "matched_quality_speedup", "speed_table", "unigram_entropy"]


@torch.no_grad()
def generative_nll(reference: Any, tokens: torch.Tensor, prompt_len: int) -> float:
    """Mean −log p_ref of the generated tokens (positions >= prompt_len) given everything before them."""
    if prompt_len < 1:
        raise ValueError("the reference ARM needs at least one prompt token")
    was = reference.training
    reference.eval()
    try:
        nll = arm_token_nll(reference, tokens.to(next(reference.parameters()).device))
    finally:
        reference.train(was)
    return float(nll[:, prompt_len - 1 :].mean())


def unigram_entropy(tokens: torch.Tensor) -> float:
    """Mean per-sequence entropy (nats) of the token histogram."""
    ents = []
    for row in tokens:
        counts = torch.bincount(row).double()
        p = counts[counts > 0] / counts.sum()
        ents.append(float(-(p * p.log()).sum()))
    return sum(ents) / len(ents)


def _timed(fn, device) -> tuple[Any, float]:
    synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, time.perf_counter() - t0


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
) -> list[dict[str, Any]]:
    """One row per method: ``method, steps, nfe, seconds, tokens_per_s, gen_nll, gen_ppl, entropy``."""
    N, P = prompts.shape
    new = length - P
    if new < 1:
        raise ValueError(f"length {length} leaves no room after prompts of {P} tokens")
    dev = next(arm.parameters()).device
    prompts = prompts.to(dev)
    rows: list[dict[str, Any]] = []

    def record(method: str, steps: int, nfe: float, tokens: torch.Tensor, secs: float) -> None:
        g = generative_nll(reference, tokens, P)
        rows.append(
            {
                "method": method,
                "steps": steps,
                "nfe": nfe,
                "seconds": secs,
                "tokens_per_s": N * new / secs,
                "gen_nll": g,
                "gen_ppl": math.exp(g),
                "entropy": unigram_entropy(tokens[:, P:]),
            }
        )

    # Warm-up passes so one-time costs (allocator, kernels) do not count against the first method timed.
    arm_generate(arm, prompts[:1], 2, temperature=temperature, generator=make_generator(seed))
    mdm_generate(mdm, prompts[0], length, 2, temperature=temperature, generator=make_generator(seed))

    for cached in (True, False) if include_uncached else (True,):
        gen = make_generator(split_seed(seed, 1))
        out, secs = _timed(
            lambda c=cached, g=gen: arm_generate(
                arm, prompts, new, temperature=temperature, cache=c, generator=g
            ),
            dev,
        )
        record("arm+kv-cache" if cached else "arm (no cache)", new, out.nfe, out.tokens, secs)
    for s in mdm_steps:
        gen = make_generator(split_seed(seed, 2, s))

        def run(s=s, g=gen) -> tuple[torch.Tensor, float]:
            o = mdm_generate(
                mdm, prompts, length, s, cfg=cfg, remasking=remasking, temperature=temperature, generator=g
            )
            return o.tokens, o.nfe

        (tokens, nfe), secs = _timed(run, dev)
        record(f"mdm ({remasking})", s, nfe, tokens, secs)
    return rows


def matched_quality_speedup(
    rows: Sequence[dict[str, Any]], arm_method: str = "arm+kv-cache"
) -> dict[str, Any]:
    """The fastest MDM row whose generative NLL is at most the ARM's, and the ARM/MDM time ratio (None if no
    MDM setting reaches the ARM's quality)."""
    arm = next(r for r in rows if r["method"] == arm_method)
    ok = [r for r in rows if r["method"].startswith("mdm") and r["gen_nll"] <= arm["gen_nll"]]
    if not ok:
        return {"matched_steps": None, "speedup": None, "arm_gen_nll": arm["gen_nll"]}
    best = min(ok, key=lambda r: r["seconds"])
    return {
        "matched_steps": best["steps"],
        "speedup": arm["seconds"] / best["seconds"],
        "arm_gen_nll": arm["gen_nll"],
    }
