"""Exact low-dimensional toys for Analytic-Init: data distributions whose noised marginals q(x_M) are known in
closed form, so KL(q(x_M) ‖ N(μ, σ²I)) can be computed without sampling.

- `GaussianToy`: x₀ ~ N(m, Σ) in d dimensions; q(x_M) = N(√ᾱ m, ᾱΣ + (1 − ᾱ)I) (VP) or N(m, Σ + σ²I) (VE), and
  the KL to an isotropic Gaussian is closed form.
- `MixtureToy`: x₀ a 1-d Gaussian mixture; q(x_M) is again a mixture, its cross-entropy to a Gaussian is closed
  form, and its entropy is a 1-d integral done by quadrature on a fine grid (error far below the quantities
  compared).

Also the noise schedules the paper's DDPM models use (`scaled_linear_alphas_cumprod`: lvdm's "linear" = SD's
scaled-linear betas, T = 1000) with optional zero terminal SNR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from i2v_leak.analytic_init import (
    analytic_init_moments_ve,
    analytic_init_moments_vp,
    cross_entropy_to_isotropic,
    kl_gaussian_to_isotropic,
)
from i2v_leak.stats import LatentStats

__all__ = ["GaussianToy", "MixtureToy", "scaled_linear_alphas_cumprod", "zero_terminal_snr"]


def scaled_linear_alphas_cumprod(
    T: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """ᾱ_t, t = 0..T−1, for betas linear in √β (lvdm's "linear", diffusers' "scaled_linear")."""
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=dtype) ** 2
    return torch.cumprod(1 - betas, 0)


def zero_terminal_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Rescale a schedule so that ᾱ_{T−1} = 0 (Lin et al. 2024, Alg. 1: shift and scale √ᾱ)."""
    s = alphas_cumprod.sqrt()
    s0, sT = s[0].clone(), s[-1].clone()
    s = (s - sT) * s0 / (s0 - sT)
    return s**2


class _Toy:
    """What every toy shares: Analytic-Init's moments from the toy's own E[x₀] and tr(Cov)/d."""

    def stats(self) -> LatentStats:
        raise NotImplementedError

    def analytic_vp(self, alpha_bar: float) -> tuple[torch.Tensor, float]:
        s = self.stats()
        return analytic_init_moments_vp(s.mean, s.tr_cov_over_d, alpha_bar)

    def analytic_ve(self, sigma: float) -> tuple[torch.Tensor, float]:
        s = self.stats()
        return analytic_init_moments_ve(s.mean, s.tr_cov_over_d, sigma)


@dataclass(frozen=True, eq=False)
class GaussianToy(_Toy):
    """x₀ ~ N(mean, cov) in d dimensions."""

    mean: torch.Tensor  # (d,)
    cov: torch.Tensor  # (d, d), symmetric positive definite

    @classmethod
    def random(cls, d: int = 3, seed: int = 0, scale: float = 0.7, offset: float = 0.8) -> GaussianToy:
        g = torch.Generator().manual_seed(seed)
        a = torch.randn(d, d, generator=g, dtype=torch.float64) * scale
        mean = offset + torch.randn(d, generator=g, dtype=torch.float64) * 0.5
        return cls(mean, a @ a.T + 0.05 * torch.eye(d, dtype=torch.float64))

    @property
    def d(self) -> int:
        return int(self.mean.shape[0])

    def stats(self) -> LatentStats:
        return LatentStats(self.mean, float(torch.diagonal(self.cov).sum() / self.d))

    def marginal_vp(self, alpha_bar: float) -> tuple[torch.Tensor, torch.Tensor]:
        a = float(alpha_bar)
        eye = torch.eye(self.d, dtype=self.cov.dtype)
        return math.sqrt(a) * self.mean, a * self.cov + (1 - a) * eye

    def marginal_ve(self, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
        eye = torch.eye(self.d, dtype=self.cov.dtype)
        return self.mean, self.cov + float(sigma) ** 2 * eye

    def kl_vp(self, alpha_bar: float, mu: torch.Tensor, sigma2: float | torch.Tensor) -> torch.Tensor:
        m, c = self.marginal_vp(alpha_bar)
        return kl_gaussian_to_isotropic(m, c, mu, sigma2)

    def kl_ve(self, sigma: float, mu: torch.Tensor, sigma2: float | torch.Tensor) -> torch.Tensor:
        m, c = self.marginal_ve(sigma)
        return kl_gaussian_to_isotropic(m, c, mu, sigma2)


@dataclass(frozen=True, eq=False)
class MixtureToy(_Toy):
    """x₀ ~ Σ_k w_k N(m_k, s_k²) in one dimension."""

    weights: torch.Tensor  # (K,), sums to 1
    means: torch.Tensor  # (K,)
    stds: torch.Tensor  # (K,)

    @classmethod
    def default(cls) -> MixtureToy:
        """A skewed, well-separated three-component mixture (far from Gaussian)."""
        f = torch.float64
        return cls(
            torch.tensor([0.5, 0.3, 0.2], dtype=f),
            torch.tensor([-0.9, 1.1, 2.4], dtype=f),
            torch.tensor([0.15, 0.3, 0.1], dtype=f),
        )

    def stats(self) -> LatentStats:
        m = (self.weights * self.means).sum()
        second = (self.weights * (self.stds**2 + self.means**2)).sum()
        return LatentStats(m.reshape(1), float(second - m * m))

    def marginal_vp(self, alpha_bar: float) -> tuple[torch.Tensor, torch.Tensor]:
        a = float(alpha_bar)
        return math.sqrt(a) * self.means, (a * self.stds**2 + (1 - a)).sqrt()

    def marginal_ve(self, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
        return self.means, (self.stds**2 + float(sigma) ** 2).sqrt()

    def _kl(
        self, means: torch.Tensor, stds: torch.Tensor, mu: torch.Tensor, sigma2: float | torch.Tensor
    ) -> torch.Tensor:
        first = (self.weights * means).sum().reshape(1)
        second = (self.weights * (stds**2 + means**2)).sum()
        return cross_entropy_to_isotropic(first, second, mu.reshape(1), sigma2) - self.entropy(means, stds)

    def entropy(self, means: torch.Tensor, stds: torch.Tensor, points: int = 4001) -> torch.Tensor:
        """H(q) = −∫ q log q for the mixture, by the trapezoid rule over ±14 component-stds (exponentially
        accurate for these smooth integrands: 2001 and 40001 points agree to 1e-15)."""
        lo = float((means - 14 * stds).min())
        hi = float((means + 14 * stds).max())
        x = torch.linspace(lo, hi, points, dtype=torch.float64)
        comp = torch.distributions.Normal(means[:, None], stds[:, None]).log_prob(x[None, :])
        logq = torch.logsumexp(comp + self.weights.log()[:, None], 0)
        return -torch.trapezoid(logq.exp() * logq, x)

    def kl_vp(self, alpha_bar: float, mu: torch.Tensor, sigma2: float | torch.Tensor) -> torch.Tensor:
        return self._kl(*self.marginal_vp(alpha_bar), mu, sigma2)

    def kl_ve(self, sigma: float, mu: torch.Tensor, sigma2: float | torch.Tensor) -> torch.Tensor:
        return self._kl(*self.marginal_ve(sigma), mu, sigma2)
