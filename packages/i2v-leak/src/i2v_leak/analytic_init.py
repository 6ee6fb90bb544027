"""Analytic-Init (Sec. 4.2, Eq. 5): the KL-optimal isotropic Gaussian to start the reverse process from at step M.

Starting early (M < T) with the training prior N(0, I) leaves a gap: q(x_M) is not N(0, I) when ᾱ_M > 0. Among
isotropic Gaussians N(μ, σ²I), KL(q(x_M) ‖ N(μ, σ²I)) is minimised by matching the first two moments:

- VP / DDPM, x_M = √ᾱ_M x₀ + √(1 − ᾱ_M) ε:  μ = √ᾱ_M E[x₀],  σ² = 1 − ᾱ_M + ᾱ_M · tr(Cov[x₀])/d;
- VE / EDM, x_σ = x₀ + σ ε:                  μ = E[x₀],        σ_p² = σ² + tr(Cov[x₀])/d.

Proof sketch: KL(q ‖ p) = −H(q) − E_q[log p], and for p = N(μ, σ²I), −E_q log p = d/2 log(2πσ²) +
E_q‖x − μ‖²/(2σ²); setting the derivatives in μ and σ² to zero gives μ = E_q[x], σ² = E_q‖x − μ‖²/d.

The official SVD code uses σ_p² = init_noise_sigma² + tr(Cov)/d with diffusers' init_noise_sigma² = σ_max² + 1,
which counts the data variance twice (the "+1" is diffusers' stand-in for it); here it is σ_max² + tr(Cov)/d,
the actual moment-matched value. The official SVD pipeline also unpacks its statistics in the wrong order
(``prepare_initial_noise`` returns ``(trCov_d, Expectation_x_0)`` and the caller reads ``(Expectation_X_0,
trCov_d)``), so it shifts the start by the scalar tr(Cov)/d and adds the mean tensor to the variance; the
DynamiCrafter/VideoCrafter scripts do not have this bug. Here the mean is E[x₀] and the variance uses tr(Cov)/d.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from i2v_leak.stats import LatentStats

__all__ = [
    "analytic_init_moments_ve",
    "analytic_init_moments_vp",
    "analytic_init_ve",
    "analytic_init_vp",
    "cross_entropy_to_isotropic",
    "kl_gaussian_to_isotropic",
]


def _scalar(x: float | torch.Tensor) -> float:
    v = float(x.item() if isinstance(x, torch.Tensor) else x)
    if not math.isfinite(v):
        raise ValueError(f"expected a finite number, got {v}")
    return v


def analytic_init_moments_vp(
    mean_x0: torch.Tensor, tr_cov_over_d: float, alpha_bar_M: float | torch.Tensor
) -> tuple[torch.Tensor, float]:
    """(μ, σ²) of Eq. 5 for a VP (DDPM) model at a step with cumulative ᾱ_M."""
    a = _scalar(alpha_bar_M)
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"alpha_bar_M must be in [0, 1], got {a}")
    return math.sqrt(a) * mean_x0, 1.0 - a + a * float(tr_cov_over_d)


def analytic_init_moments_ve(
    mean_x0: torch.Tensor, tr_cov_over_d: float, sigma: float | torch.Tensor
) -> tuple[torch.Tensor, float]:
    """(μ, σ_p²) of Eq. 5 for a VE / EDM model at noise level σ (x_σ = x₀ + σε)."""
    s = _scalar(sigma)
    if s < 0:
        raise ValueError(f"sigma must be >= 0, got {s}")
    return mean_x0, s * s + float(tr_cov_over_d)


def _draw(
    mu: torch.Tensor,
    var: float,
    shape: Sequence[int],
    generator: torch.Generator | None,
    device: torch.device | str | None,
    dtype: torch.dtype,
) -> torch.Tensor:
    gen_dev = generator.device if generator is not None else torch.device("cpu")
    eps = torch.randn(tuple(shape), generator=generator, device=gen_dev, dtype=torch.float32)
    dev = device if device is not None else mu.device
    out = mu.to(dev, torch.float32) + math.sqrt(var) * eps.to(dev)
    return out.to(dtype)


def analytic_init_vp(
    stats: LatentStats,
    alpha_bar_M: float | torch.Tensor,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    *,
    layout: str = "BFCHW",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw x_M ~ N(√ᾱ_M E[x₀], (1 − ᾱ_M + ᾱ_M tr(Cov)/d) I) (Eq. 5, VP form), a batch of latents of ``shape``.

    ``alpha_bar_M`` is ᾱ at the first timestep the sampler visits (for the early-start grid that is t = M − 1, as
    in the official code). ``layout`` says where frames and channels sit in ``shape`` ("BFCHW" SVD, "BCFHW"
    I2VGen-XL / lvdm); noise is drawn on the generator's device, then moved, so a seed gives the same start on
    any device. With ᾱ_M = 0 this is exactly N(0, I).
    """
    mean = stats.mean_for(tuple(shape), layout)
    mu, var = analytic_init_moments_vp(mean, stats.tr_cov_over_d, alpha_bar_M)
    return _draw(mu, var, shape, generator, device, dtype)


def analytic_init_ve(
    stats: LatentStats,
    sigma: float | torch.Tensor,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    *,
    layout: str = "BFCHW",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw x_σ ~ N(E[x₀], (σ² + tr(Cov)/d) I) (Eq. 5, VE/EDM form; σ = σ_max = M for SVD), a batch of latents
    of ``shape``. See `analytic_init_vp` for ``layout`` and the noise device."""
    mean = stats.mean_for(tuple(shape), layout)
    mu, var = analytic_init_moments_ve(mean, stats.tr_cov_over_d, sigma)
    return _draw(mu, var, shape, generator, device, dtype)


def kl_gaussian_to_isotropic(
    mean_q: torch.Tensor, cov_q: torch.Tensor, mu: torch.Tensor, sigma2: float | torch.Tensor
) -> torch.Tensor:
    """Exact KL(N(mean_q, cov_q) ‖ N(mu, σ² I)) = ½[tr Σ_q/σ² + ‖μ − m_q‖²/σ² − d + d ln σ² − ln det Σ_q].

    ``mean_q`` (d,), ``cov_q`` (d, d); differentiable in every argument (the tests take its gradient).
    """
    d = mean_q.shape[-1]
    s2 = torch.as_tensor(sigma2, dtype=cov_q.dtype, device=cov_q.device)
    diff = mu - mean_q
    logdet = torch.linalg.slogdet(cov_q)[1]
    return 0.5 * (
        torch.diagonal(cov_q).sum() / s2 + (diff * diff).sum() / s2 - d + d * torch.log(s2) - logdet
    )


def cross_entropy_to_isotropic(
    first_moment: torch.Tensor,
    second_moment_sum: torch.Tensor | float,
    mu: torch.Tensor,
    sigma2: float | torch.Tensor,
) -> torch.Tensor:
    """E_q[−log N(x; μ, σ²I)] = d/2 ln(2πσ²) + (E‖x‖² − 2 μ·E[x] + ‖μ‖²)/(2σ²), from q's mean (d,) and E‖x‖².

    KL(q ‖ p) = this − H(q), and H(q) does not depend on (μ, σ²): the optimum of this cross-entropy is the
    optimum of the KL for any q, mixtures included.
    """
    d = first_moment.shape[-1]
    s2 = torch.as_tensor(sigma2, dtype=first_moment.dtype, device=first_moment.device)
    quad = second_moment_sum - 2 * (mu * first_moment).sum() + (mu * mu).sum()
    return 0.5 * d * torch.log(2 * math.pi * s2) + quad / (2 * s2)
