"""Drawing tokens from predicted distributions: temperature, top-k and top-p (nucleus) filtering, and
inverse-CDF sampling from an externally drawn uniform.

Driving every draw by one uniform per position (instead of Gumbel noise over the whole vocabulary) keeps the
randomness of a sampling step independent of which rows were re-evaluated: that is what makes the cached and
uncached samplers return identical tokens under the same generator.
"""

from __future__ import annotations

import torch

__all__ = ["filter_logits", "sample_from_uniform"]


def filter_logits(
    logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Float32 log-probabilities after temperature, top-k and top-p (filtered entries are −inf).

    top-p keeps the smallest set of most likely tokens whose probability reaches p (always at least one).
    """
    if temperature <= 0:
        raise ValueError("temperature must be > 0 here (temperature 0 means greedy: take the argmax)")
    lp = torch.log_softmax(logits.float() / temperature, dim=-1)
    if top_k is not None:
        k = int(top_k)
        if k < 1:
            raise ValueError("top_k must be >= 1")
        if k < lp.shape[-1]:
            kth = lp.topk(k, dim=-1).values[..., -1:]
            lp = lp.masked_fill(lp < kth, float("-inf"))
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError("top_p must be in (0, 1]")
        if top_p < 1.0:
            sorted_lp, order = lp.sort(dim=-1, descending=True)
            cum = sorted_lp.exp().cumsum(-1)
            # drop a token when the tokens ranked above it already reach p
            drop_sorted = (cum - sorted_lp.exp()) >= top_p
            drop_sorted[..., 0] = False
            drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
            lp = lp.masked_fill(drop, float("-inf"))
    if top_k is not None or top_p is not None:
        lp = torch.log_softmax(lp, dim=-1)
    return lp


def sample_from_uniform(logp: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse-CDF draw from each row of ``exp(logp)`` (n, V) using ``u`` (n,) ∈ [0, 1).

    Returns (ids, probability of the drawn id). Zero-probability tokens are never drawn.
    """
    probs = logp.exp()
    cdf = probs.cumsum(dim=-1)
    target = (u.to(cdf.dtype) * cdf[..., -1]).unsqueeze(-1)
    ids = torch.searchsorted(cdf.contiguous(), target.contiguous(), right=True).squeeze(-1)
    ids = ids.clamp_max(logp.shape[-1] - 1)
    # rounding can land on a zero-probability tail entry: step back to the last token with mass
    bad = probs.gather(-1, ids.unsqueeze(-1)).squeeze(-1) <= 0
    if bool(bad.any()):
        last = (probs > 0).float().cumsum(-1).argmax(-1)
        ids = torch.where(bad, last, ids)
    return ids, probs.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
