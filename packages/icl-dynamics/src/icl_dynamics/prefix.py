"""Prefix Gram matrices S_t = Σ_{i≤t} e_i e_iᴴ of the embedded tokens, and their action z_t ↦ S_t z_t.

The paper's linear causal self-attention (Sec. 3) predicts ŷ_{t+1} = W^{PV} S_t W^{KQ} e_t / ρ_t, so every
prefix prediction and both parameter gradients are one application of the S_t's. S_t does not depend on the
parameters: it is computed ONCE per data set by a cumulative sum over t and reused every epoch (the official
code recomputes E_t E_tᴴ for every prefix, which is O(T²) per sequence and epoch).

Three interchangeable implementations of ``apply(z)[n, t] = S_{n,t} z_{n,t}``:

- ``cumsum``: materialise S_t with one cumulative sum (O(T·D²) memory per sequence, O(T) time), cached.
- ``blocked``: cumulative sums of block Grams plus causal products inside each block of ``block`` tokens
  (O(T·block) time, O(T/block·D²) memory): the same numbers without the cache, for very large m·T.
- ``direct``: the O(T²) masked "attention" form Σ_{i≤t} e_i (e_iᴴ z_t); the reference for tests and the
  benchmark baseline.
"""

from __future__ import annotations

import torch

__all__ = ["PrefixGram", "blocked_apply", "direct_apply", "embed", "last_gram", "prefix_gram"]

STRATEGIES = ("auto", "cumsum", "blocked", "direct")


def embed(x: torch.Tensor) -> torch.Tensor:
    """e_t = [x_t; x_{t-1}] with x_0 = 0 (the paper's embedding): (m, T, d) -> (m, T, 2d)."""
    prev = torch.zeros_like(x)
    prev[:, 1:] = x[:, :-1]
    return torch.cat([x, prev], dim=-1)


def prefix_gram(e: torch.Tensor) -> torch.Tensor:
    """S[n, t] = Σ_{i≤t} e_{n,i} e_{n,i}ᴴ for every prefix: (m, T, D) -> (m, T, D, D), one cumulative sum."""
    outer = e[..., :, None] * e.conj()[..., None, :]
    # The cumulative sum over a real view runs vectorised (complex cumsum is ~2x slower on CPU), in place.
    flat = torch.view_as_real(outer).view(outer.shape[0], outer.shape[1], -1)
    torch.cumsum(flat, dim=1, out=flat)
    return outer


def last_gram(e: torch.Tensor, upto: int) -> torch.Tensor:
    """Σ_{i≤upto} e_i e_iᴴ (1-indexed ``upto``) for each sequence: (m, T, D) -> (m, D, D)."""
    head = e[:, :upto]
    return head.transpose(1, 2) @ head.conj()


def direct_apply(e: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """O(T²) reference: out_t = Σ_{i≤t} e_i (e_iᴴ z_t) via a causal (T × T) score matrix per sequence."""
    scores = torch.tril(z @ e.conj().transpose(1, 2))  # scores[t, i] = e_iᴴ z_t, kept for i ≤ t
    return scores @ e


def blocked_apply(e: torch.Tensor, z: torch.Tensor, block: int = 16) -> torch.Tensor:
    """S_t z_t with block-level cumulative sums: exact, O(T·block) work, no per-token D×D state."""
    m, T, D = e.shape
    nb = -(-T // block)
    pad = nb * block - T
    if pad:
        e = torch.nn.functional.pad(e, (0, 0, 0, pad))
        z = torch.nn.functional.pad(z, (0, 0, 0, pad))
    eb = e.reshape(m, nb, block, D)
    zb = z.reshape(m, nb, block, D)
    ebh = eb.conj().transpose(-1, -2)
    # Inside a block: the causal part Σ_{i in block, i≤t} e_i (e_iᴴ z_t).
    out = torch.tril(zb @ ebh) @ eb
    # Earlier blocks: (Σ_{i<block start} e_i e_iᴴ) z_t; in row form z_tᵀ (Σ conj(e_i) e_iᵀ).
    gram_t = ebh @ eb  # (m, nb, D, D) = Σ conj(e_i) e_iᵀ over each block
    before = torch.cumsum(gram_t, dim=1) - gram_t
    out = out + zb @ before
    return out.reshape(m, nb * block, D)[:, :T]


class PrefixGram:
    """The operator z ↦ (S_t z_t)_t for one data set, with the strategy chosen once.

    ``strategy="auto"`` caches the materialised S_t (``cumsum``) when it needs at most ``cache_bytes``,
    else uses ``blocked``. ``apply`` accepts the full (m, T, D) layout of ``e``.
    """

    def __init__(
        self,
        e: torch.Tensor,
        strategy: str = "auto",
        *,
        cache_bytes: int = 2 << 30,
        block: int = 16,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown prefix strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if e.ndim != 3:
            raise ValueError(f"embedded tokens must be (m, T, D), got shape {tuple(e.shape)}")
        if strategy == "auto":
            need = e.shape[0] * e.shape[1] * e.shape[2] ** 2 * e.element_size()
            strategy = "cumsum" if need <= cache_bytes else "blocked"
        self.e = e
        self.strategy = strategy
        self.block = block
        self.gram = prefix_gram(e) if strategy == "cumsum" else None

    def apply(self, z: torch.Tensor, start: int = 0) -> torch.Tensor:
        """S_t z_t for the sequences ``start .. start + len(z)`` (all of them by default)."""
        n = z.shape[0]
        e = self.e[start : start + n]
        if z.shape != e.shape:
            raise ValueError(f"z must have the shape of e {tuple(e.shape)}, got {tuple(z.shape)}")
        if self.gram is not None:
            return (self.gram[start : start + n] @ z[..., None])[..., 0]
        if self.strategy == "blocked":
            return blocked_apply(e, z, self.block)
        # The O(T²) score tensor is m·T² entries: go through the batch in slices of at most ~2^24 of them.
        step = max(1, (1 << 24) // (e.shape[1] ** 2))
        if step >= n:
            return direct_apply(e, z)
        return torch.cat([direct_apply(e[i : i + step], z[i : i + step]) for i in range(0, n, step)])
