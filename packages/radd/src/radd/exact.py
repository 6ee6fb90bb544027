"""Exact computations for tiny problems: a toy distribution with exact conditionals, and the DCE bound by
enumerating every mask.

- `ExactToy` is a joint distribution over all V^L sequences; called as a masked model it returns the exact
  conditionals p₀(xⁱ | unmasked tokens), and it also gives the exact noisy marginal p_t (RADD Theorem 1 tests).
- `mask_costs` enumerates all 2^m masks M of the scored positions and sums c(M) = Σ_{i∈M} −log p(xⁱ | x_{¬M}) by
  mask size; `exact_nll` weights them by (|M|−1)!(m−|M|)!/m! (RADD Theorem 2: the λ-DCE / any-order AR identity),
  which equals −log p(x) when the conditionals are exact; `dce_integral` gives the exact expectation of each
  floored estimator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from radd.masked_model import check_tokens, eval_mode, log_probs, resolve_mask_id, resolve_positions
from radd.schedules import NoiseSchedule, get_schedule, mask_prob

__all__ = ["ExactToy", "MaskCosts", "dce_integral", "estimator_expectation", "exact_nll", "mask_costs"]

MAX_ENUM_POSITIONS = 20


class ExactToy:
    """A distribution over all V^L sequences (V^L ≤ 2^20) with exact conditionals; a masked model (mask id V)."""

    def __init__(self, probs: torch.Tensor, vocab_size: int, length: int) -> None:
        n = vocab_size**length
        if n > 2**20:
            raise ValueError(f"V^L = {n} sequences is too many to enumerate (limit 2^20)")
        p = torch.as_tensor(probs, dtype=torch.float64).reshape(-1)
        if p.numel() != n or bool((p < 0).any()) or not math.isclose(float(p.sum()), 1.0, rel_tol=1e-9):
            raise ValueError(f"probs must be a distribution over {n} sequences")
        self.vocab_size, self.length, self.mask_id = vocab_size, length, vocab_size
        self.probs = p
        digits = torch.arange(n)[:, None] // (vocab_size ** torch.arange(length - 1, -1, -1))[None]
        self.sequences = digits % vocab_size  # (V^L, L), row index = base-V number
        self._onehot = torch.nn.functional.one_hot(self.sequences, vocab_size).double()  # (V^L, L, V)

    @classmethod
    def random(
        cls, vocab_size: int, length: int, generator: torch.Generator | None = None, temperature: float = 1.5
    ) -> ExactToy:
        """A random, correlated, strictly positive distribution (softmax of Gaussian scores)."""
        n = vocab_size**length
        scores = torch.randn(n, generator=generator, dtype=torch.float64) * temperature
        return cls(torch.softmax(scores, 0), vocab_size, length)

    def index(self, x: torch.Tensor) -> torch.Tensor:
        """Row index of each clean sequence in ``sequences``."""
        w = self.vocab_size ** torch.arange(self.length - 1, -1, -1, device=x.device)
        return (x.long() * w).sum(-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = check_tokens(x, self.mask_id, allow_mask=False)
        return self.probs.log()[self.index(x.cpu())]

    def _consistent(self, x: torch.Tensor) -> torch.Tensor:
        x = x.cpu()
        return ((self.sequences[None] == x[:, None]) | (x[:, None] == self.mask_id)).all(-1)  # (B, V^L)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p₀(xⁱ = v | unmasked tokens of x) for every position, shape (B, L, V)."""
        x = check_tokens(x, self.mask_id, allow_mask=True)
        w = self._consistent(x).double() * self.probs[None]
        cond = torch.einsum("bn,nlv->blv", w, self._onehot) / w.sum(-1)[:, None, None]
        return cond.clamp_min(1e-300).log().to(x.device)

    def noisy_marginal(self, x_t: torch.Tensor, alpha: float) -> torch.Tensor:
        """p_t(x_t) = Σ_{x₀} p₀(x₀) Πᵢ q(x_tⁱ | x₀ⁱ), q = α·1[x_tⁱ = x₀ⁱ] or 1 − α for a mask; α = e^{−σ̄(t)}."""
        x_t = check_tokens(x_t, self.mask_id, allow_mask=True).cpu()
        masked = (x_t == self.mask_id).sum(-1)
        factor = alpha ** (self.length - masked).double() * (1.0 - alpha) ** masked.double()
        return (self._consistent(x_t).double() * self.probs[None]).sum(-1) * factor


@dataclass(frozen=True)
class MaskCosts:
    """``by_size[b, k]`` = Σ_{|M| = k} c(M) over masks of the ``m[b]`` scored positions of sequence b."""

    by_size: torch.Tensor  # (B, L + 1) float64
    m: torch.Tensor  # (B,)


@torch.no_grad()
def mask_costs(
    model: Any,
    x: torch.Tensor,
    *,
    positions: torch.Tensor | None = None,
    mask_id: int | None = None,
    batch_size: int = 4096,
) -> MaskCosts:
    """Evaluate the model on every mask of the scored positions (2^m forward rows per sequence, m ≤ 20)."""
    mid = resolve_mask_id(model, mask_id)
    x = check_tokens(x, mid, allow_mask=False)
    pos = resolve_positions(positions, x)
    B, L = x.shape
    by_size = torch.zeros(B, L + 1, dtype=torch.float64)
    ms = pos.sum(1).cpu()
    with eval_mode(model):
        for b in range(B):
            idx = pos[b].nonzero().flatten()
            m = idx.numel()
            if m > MAX_ENUM_POSITIONS:
                raise ValueError(
                    f"exact enumeration needs at most {MAX_ENUM_POSITIONS} scored positions, got {m}"
                )
            bits = (torch.arange(2**m)[:, None] >> torch.arange(m)[None]) & 1  # (2^m, m)
            masks = torch.zeros(2**m, L, dtype=torch.bool)
            masks[:, idx.cpu()] = bits.bool()
            masks = masks.to(x.device)
            for s in range(0, 2**m, batch_size):
                mk = masks[s : s + batch_size]
                xt = torch.where(mk, mid, x[b][None].expand_as(mk))
                lp = (
                    log_probs(model, xt, mid)
                    .gather(-1, x[b][None, :, None].expand(len(mk), L, 1))
                    .squeeze(-1)
                )
                cost = torch.where(mk, -lp, 0.0).sum(1).double().cpu()
                by_size[b].index_add_(0, mk.sum(1).cpu(), cost)
    return MaskCosts(by_size, ms)


def dce_integral(costs: MaskCosts, lo: float, hi: float) -> torch.Tensor:
    """∫_lo^hi Σ_k C_k π^{k−1}(1−π)^{m−k} dπ per sequence: the DCE integrand f(π)/π integrated over mask
    probabilities (a polynomial in π, so Gauss–Legendre with L+1 nodes is exact)."""
    L = costs.by_size.shape[1] - 1
    nodes, weights = np.polynomial.legendre.leggauss(L + 1)
    pi = torch.as_tensor(0.5 * (hi - lo) * nodes + 0.5 * (hi + lo), dtype=torch.float64)
    w = torch.as_tensor(0.5 * (hi - lo) * weights, dtype=torch.float64)
    k = torch.arange(L + 1, dtype=torch.float64)
    out = []
    for b in range(costs.by_size.shape[0]):
        m = int(costs.m[b])
        kk = k[1 : m + 1]
        poly = pi[:, None] ** (kk - 1) * (1 - pi[:, None]) ** (m - kk)  # (nodes, m)
        out.append((w[:, None] * poly * costs.by_size[b, 1 : m + 1]).sum())
    return torch.stack(out)


def exact_nll(
    model: Any, x: torch.Tensor, *, positions: torch.Tensor | None = None, mask_id: int | None = None
) -> torch.Tensor:
    """The DCE bound exactly: Σ_M [(|M|−1)!(m−|M|)!/m!] · Σ_{i∈M} −log p_θ(xⁱ | x_{¬M}) (RADD Theorem 2), in nats.

    Equals −log p(x) (or −log p(x_positions | x_rest)) when the model's conditionals are exact.
    """
    costs = mask_costs(model, x, positions=positions, mask_id=mask_id)
    out = []
    for b in range(costs.by_size.shape[0]):
        m = int(costs.m[b])
        k = torch.arange(1, m + 1, dtype=torch.float64)
        logw = torch.lgamma(k) + torch.lgamma(m - k + 1) - math.lgamma(m + 1)
        out.append((logw.exp() * costs.by_size[b, 1 : m + 1]).sum())
    return torch.stack(out)


def estimator_expectation(
    costs: MaskCosts,
    estimator: str,
    *,
    eps: float = 1e-3,
    t_min: float = 1e-3,
    schedule: NoiseSchedule | str | None = None,
) -> torch.Tensor:
    """The exact expectation of `radd.losses`' estimators given the enumerated costs (floors included)."""
    if estimator in ("k", "k_dce"):
        return dce_integral(costs, 0.0, 1.0)
    if estimator in ("lambda", "lambda_dce"):
        return dce_integral(costs, eps, 1.0) / (1.0 - eps)
    if estimator in ("t", "t_dce", "t_dse"):
        sched = get_schedule(schedule)
        ends = mask_prob(sched, torch.tensor([t_min, 1.0], dtype=torch.float64))
        return dce_integral(costs, float(ends[0]), float(ends[1])) / (1.0 - t_min)
    raise ValueError(f"unknown estimator {estimator!r}")
