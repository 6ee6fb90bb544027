"""Where the reverse process starts: early-start timestep grids (DDPM models) and sigma grids (EDM models).

The paper's first inference fix (Sec. 4.1) starts generation at an earlier time M < T, where the conditional image
has not yet leaked into every detail. For DDPM-type models the DDIM grid is respaced over [0, M] with the
"uniform trailing" rule, so the first model call is at t = M − 1 and S steps cover the whole interval. For EDM models
(SVD) M is the largest noise level σ_max of the Karras grid.

Plain numpy/torch; nothing here imports diffusers.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["edm_sigmas", "karras_sigmas", "start_timesteps"]


def start_timesteps(M: int, steps: int) -> list[int]:
    """Descending DDIM timesteps for an early start at M with ``steps`` model calls ("uniform trailing").

    The grid is flip(round(arange(M, 0, −M/steps))) − 1, the official ``make_ddim_timesteps(
    "uniform_trailing", ...)`` rule with ``num_ddpm_timesteps = M``: the first step is t = M − 1 and the last is
    round(M/steps) − 1, so ``start_timesteps(1000, 50)`` is diffusers' "trailing" spacing and
    ``start_timesteps(940, 50)`` begins at 939.

    Returned newest-first (the order a sampler visits them). Raises ValueError when the grid would repeat a
    timestep (``steps > M``).
    """
    M, steps = int(M), int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if M < 1:
        raise ValueError(f"the start M must be >= 1, got {M}")
    if steps > M:
        raise ValueError(f"cannot take {steps} distinct steps in [0, {M}); use steps <= M")
    # The official grid, values included: np.arange over floats fills start + i·delta with delta taken from its
    # first two points, which differs from M − i·M/steps in the last bit and flips round-half-to-even ties (1184 of
    # the (M, steps) pairs with M <= 1000 and steps in 10, 20, 25, 30, 50). Its float range can also end with a spurious
    # ~1e-13 point (e.g. M=820, steps=25) that becomes timestep −1 (indexing ᾱ_T): keep the first `steps` points.
    grid = np.round(np.arange(M, 0, -M / steps)[:steps]).astype(np.int64) - 1
    ts = grid.tolist()
    if len(set(ts)) != len(ts) or ts[-1] < 0:
        raise ValueError(f"the grid for M={M}, steps={steps} repeats a timestep; use fewer steps")
    return [int(t) for t in ts]


def karras_sigmas(sigma_min: float, sigma_max: float, steps: int, rho: float = 7.0) -> torch.Tensor:
    """The EDM noise levels of Karras et al. (2022), Eq. 5: σ_i = (σ_max^{1/ρ} + i/(n−1)(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ.

    Returns ``steps`` values in float64, from σ_max down to σ_min (no trailing zero).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
    if steps == 1:
        return torch.tensor([float(sigma_max)], dtype=torch.float64)
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def edm_sigmas(
    M: float, steps: int, sigma_min: float = 0.002, rho: float = 7.0, final_zero: bool = True
) -> list[float]:
    """The sigma list for an EDM (SVD) sampler that starts at σ_max = M (Sec. 4.1; the CIL SVD uses M = 100,
    stock SVD 700), with a final 0 appended as diffusers' ``EulerDiscreteScheduler.set_timesteps(sigmas=...)``
    expects. Pass it as ``sigmas=`` to `StableVideoDiffusionPipeline`.
    """
    if not math.isfinite(M) or sigma_min >= M:
        raise ValueError(f"the start sigma M must exceed sigma_min={sigma_min}, got {M}")
    sig = karras_sigmas(sigma_min, float(M), steps, rho).tolist()
    return [*sig, 0.0] if final_zero else sig
