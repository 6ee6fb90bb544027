"""Generation for both architectures.

- ARM: left-to-right sampling with a key/value cache (one token per forward after the prompt), or without it (the
  whole prefix recomputed each step; the reference path the cache is tested against).
- MDM: radd's sampler (``radd.sample``) with "random" (SMDM's "origin") or "confidence" remasking, optionally
  through `UnsupervisedCFG` (the official ``diff_sample``'s ``cfg_scale``).

Sampling noise is drawn from an explicit generator (Gumbel-max in float64, as the official sampler does), so the
cached and uncached ARM paths draw the same noise and produce the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gen_common.seeding import rand
from mdm_scaling.guidance import UnsupervisedCFG

__all__ = ["ARMOutput", "arm_generate", "gumbel_argmax", "mdm_generate"]


@dataclass
class ARMOutput:
    tokens: torch.Tensor  # (B, P + new)
    nfe: int  # forward passes
    logits: torch.Tensor | None = None  # (B, new, V) float32, when requested


def gumbel_argmax(
    logits: torch.Tensor,
    temperature: float,
    generator: torch.Generator | None,
    top_k: int | None = None,
) -> torch.Tensor:
    """argmax(logits/τ + Gumbel) = a sample at temperature τ; τ = 0 is greedy. Noise in float64 (as the official
    ``add_gumbel_noise``: low precision Gumbel noise biases the sample)."""
    lf = logits.double()
    if top_k is not None and top_k < lf.shape[-1]:
        kth = lf.topk(top_k, dim=-1).values[..., -1:]
        lf = lf.masked_fill(lf < kth, float("-inf"))
    if temperature <= 0:
        return lf.argmax(-1)
    u = rand(lf.shape, generator, device=lf.device, dtype=torch.float64).clamp_(1e-300, 1.0)
    return (lf / temperature - torch.log(-torch.log(u))).argmax(-1)


@torch.no_grad()
def arm_generate(
    model: Any,
    prompt: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    cache: bool = True,
    generator: torch.Generator | None = None,
    return_logits: bool = False,
) -> ARMOutput:
    """Sample ``max_new_tokens`` after ``prompt`` (B, P), P >= 1. With ``cache`` the prompt is encoded once and
    every later step feeds one token against the cached keys/values (O(L) per token instead of O(L²))."""
    if prompt.ndim != 2 or prompt.shape[1] < 1:
        raise ValueError("prompt must be (batch, length >= 1) ids; an ARM needs at least one token to start")
    B, P = prompt.shape
    total = P + max_new_tokens
    if total > model.config.block_size:
        raise ValueError(f"prompt + new tokens = {total} exceeds block_size {model.config.block_size}")
    was = model.training
    model.eval()
    tokens = prompt
    kv = model.new_cache(B, total) if cache else None
    collected = []
    nfe = 0
    try:
        step_in = prompt
        for _ in range(max_new_tokens):
            logits = model(step_in, kv) if cache else model(tokens)
            nfe += 1
            last = logits[:, -1].float()
            if return_logits:
                collected.append(last)
            nxt = gumbel_argmax(last, temperature, generator, top_k)[:, None]
            tokens = torch.cat([tokens, nxt], dim=1)
            step_in = nxt
    finally:
        model.train(was)
    return ARMOutput(tokens, nfe, torch.stack(collected, 1) if return_logits and collected else None)


@torch.no_grad()
def mdm_generate(
    model: Any,
    prompt: torch.Tensor | None,
    length: int,
    steps: int,
    *,
    cfg: float = 0.0,
    remasking: str = "confidence",
    temperature: float = 1.0,
    cache: bool = True,
    generator: torch.Generator | None = None,
    num_samples: int | None = None,
    suffix: torch.Tensor | None = None,
    **kwargs: Any,
):
    """Sample sequences of ``length`` tokens in ``steps`` denoising steps (``radd.sample``).

    ``prompt``: None, 1-D ids shared by ``num_samples`` rows, or (N, P) one prompt per row (all of length P);
    ``suffix``: 1-D ids fixed at the end. ``cfg > 0`` guides with the prompt (and suffix) replaced by masks as the
    unconditional input (Sec. 5); the prompt positions are shared by all rows, so radd's row cache stays valid.
    Returns radd's SampleOutput.
    """
    from radd.masked_model import eval_mode

    # radd switches dropout off only for nn.Modules it is given; the CFG wrapper is not one.
    with eval_mode(model):
        return _mdm_generate(
            model, prompt, length, steps, cfg=cfg, remasking=remasking, temperature=temperature, cache=cache,
            generator=generator, num_samples=num_samples, suffix=suffix, **kwargs,
        )  # fmt: skip


def _mdm_generate(
    model,
    prompt,
    length,
    steps,
    *,
    cfg,
    remasking,
    temperature,
    cache,
    generator,
    num_samples,
    suffix,
    **kwargs,
):
    import radd

    suf = None if suffix is None else suffix.reshape(-1)
    rows = None
    if prompt is not None and prompt.ndim == 2 and prompt.shape[0] > 1:
        rows = prompt
        n = prompt.shape[0]
        if num_samples not in (None, n):
            raise ValueError(f"num_samples={num_samples} but {n} prompts were given")
        plen = prompt.shape[1]
    else:
        n = num_samples or 1
        plen = 0 if prompt is None else prompt.numel()
    slen = 0 if suf is None else len(suf)
    if plen + slen > length:
        raise ValueError(f"prompt ({plen}) and suffix ({slen}) do not fit in length {length}")
    keep = torch.zeros(length, dtype=torch.bool)
    keep[:plen] = True
    if slen:
        keep[length - slen :] = True
    net = model
    if cfg > 0:
        if not keep.any():
            raise ValueError("classifier-free guidance needs a prompt (or suffix) to drop")
        net = UnsupervisedCFG(model, keep, cfg)
    if rows is not None:
        tokens = torch.zeros(n, length, dtype=torch.long, device=rows.device)
        tokens[:, :plen] = rows
        if slen:
            tokens[:, length - slen :] = suf.to(rows.device)
        fixed = {"given": (tokens, keep.to(rows.device).expand(n, length))}
    else:
        fixed = {"prefix": None if prompt is None else prompt.reshape(-1), "suffix": suf}
    return radd.sample(
        net,
        n,
        length,
        steps,
        cache=cache,
        generator=generator,
        remasking=remasking,
        temperature=temperature,
        **fixed,
        **kwargs,
    )
