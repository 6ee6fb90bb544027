"""BFN noise schedules, their linear SDEs, forward (noising) samplers and time grids.

Time convention: the BFN time ``t`` in [0, 1] with ``t = 1`` at the data, as in Graves et al. (2023) and in the
nnaisense networks. The SDE paper (Xue et al., 2024) writes its SDEs in the reversed time ``τ = 1 − t``; the
coefficients ``f`` and ``g²`` below are those of the *forward* (noising) SDE in ``τ``, ``dμ = f μ dτ + g dw``
(Theorem 4.1 for continuous data, Theorem 5.1 for the latents of discrete data), evaluated at ``τ = 1 − t``.

All schedule arithmetic is float64 (Python floats or float64 tensors): the solvers take ratios such as
``σ_t/σ_s`` and ``e^{−h}`` close to 1, where float32 loses digits; network calls happen in the network's dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from gen_common.seeding import randn

__all__ = ["ContinuousSchedule", "DiscreteSchedule", "Spacing", "time_grid"]

Spacing = Literal["time", "logsnr"]


def _f64(t: float | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(t, dtype=torch.float64)


def _broadcast(coef: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-row coefficients of shape (B,) (or a scalar) as (B, 1, ..., 1) in ``like``'s dtype/device."""
    coef = coef.to(device=like.device)
    if coef.ndim == 1:
        coef = coef.reshape(-1, *([1] * (like.ndim - 1)))
    return coef


@dataclass(frozen=True)
class ContinuousSchedule:
    """Continuous-data BFN (Graves et al., 2023, Sec. 4): prior N(0, 1), accuracy ρ(t) = σ₁^{−2t}.

    The input mean follows ``μ_t = γ(t) x + sqrt(γ(t)(1 − γ(t))) ε`` with ``γ(t) = 1 − σ₁^{2t}`` (BFN eq. 80),
    i.e. a Gaussian diffusion with ``α_t = γ(t)`` and ``σ_t = sqrt(γ(1 − γ))`` (Xue et al., Sec. 4.1).
    """

    sigma_1: float = 0.001  # official CIFAR-10 checkpoint: σ₁² = min_variance = 1e-6

    def __post_init__(self) -> None:
        if not 0.0 < self.sigma_1 < 1.0:
            raise ValueError(f"sigma_1 must be in (0, 1), got {self.sigma_1}")

    @property
    def log_sigma_1(self) -> float:
        return math.log(self.sigma_1)

    def gamma(self, t: float | torch.Tensor) -> torch.Tensor:
        """γ(t) = 1 − σ₁^{2t} (BFN eq. 72)."""
        return -torch.expm1(2.0 * _f64(t) * self.log_sigma_1)

    def alpha(self, t: float | torch.Tensor) -> torch.Tensor:
        """Signal coefficient α_t = γ(t)."""
        return self.gamma(t)

    def sigma(self, t: float | torch.Tensor) -> torch.Tensor:
        """Noise scale σ_t = sqrt(γ(t)(1 − γ(t)))."""
        g = self.gamma(t)
        return torch.sqrt(g * (1.0 - g))

    def lambda_(self, t: float | torch.Tensor) -> torch.Tensor:
        """Half log-SNR λ_t = log α_t − log σ_t = ½ log(γ / (1 − γ)); increases with t."""
        t = _f64(t)
        g = self.gamma(t)
        return 0.5 * (torch.log(g) - 2.0 * t * self.log_sigma_1)

    def t_from_lambda(self, lam: float | torch.Tensor) -> torch.Tensor:
        """Inverse of `lambda_`: 1 − γ = sigmoid(−2λ) = σ₁^{2t}."""
        return torch.nn.functional.logsigmoid(-2.0 * _f64(lam)) / (2.0 * self.log_sigma_1)

    def f(self, t: float | torch.Tensor) -> torch.Tensor:
        """Drift coefficient of the forward SDE in τ: f = 2 ln σ₁ (1 − γ)/γ (Theorem 4.1)."""
        g = self.gamma(t)
        return 2.0 * self.log_sigma_1 * (1.0 - g) / g

    def g2(self, t: float | torch.Tensor) -> torch.Tensor:
        """Squared diffusion coefficient of the forward SDE in τ: g² = −2 ln σ₁ (1 − γ) (Theorem 4.1)."""
        return -2.0 * self.log_sigma_1 * (1.0 - self.gamma(t))

    def accuracy(self, t: float | torch.Tensor) -> torch.Tensor:
        """Precision of the input distribution, ρ(t) = σ₁^{−2t} = 1/(1 − γ(t)) (BFN eq. 76)."""
        return torch.exp(-2.0 * _f64(t) * self.log_sigma_1)

    def bfn_alpha(self, i: int, n: int) -> float:
        """Accuracy of the i-th of n steps of the original sampler: α_i = σ₁^{−2i/n}(1 − σ₁^{2/n}) (BFN eq. 95)."""
        return math.exp(-2.0 * i / n * self.log_sigma_1) * -math.expm1(2.0 / n * self.log_sigma_1)

    def sample_mu(
        self, x: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward process: ``(μ_t, ε)`` with ``μ_t = γ x + sqrt(γ(1 − γ)) ε`` for per-row times ``t`` of shape (B,)."""
        eps = randn(x.shape, generator, device=x.device, dtype=x.dtype)
        g = _broadcast(self.gamma(t), x)
        mu = (g * x.double() + torch.sqrt(g * (1 - g)) * eps.double()).to(x.dtype)
        return mu, eps

    def eps_to_x0(self, mu: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """Data prediction from noise prediction: x̂ = μ/γ − sqrt((1 − γ)/γ) ε̂ (BFN eq. 84)."""
        g = _broadcast(self.gamma(t), mu)
        return (mu.double() / g - torch.sqrt((1 - g) / g) * eps.double()).to(mu.dtype)

    def x0_to_eps(self, mu: torch.Tensor, x0: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """Noise prediction from data prediction: ε̂ = (μ − γ x̂)/sqrt(γ(1 − γ))."""
        g = _broadcast(self.gamma(t), mu)
        return ((mu.double() - g * x0.double()) / torch.sqrt(g * (1 - g))).to(mu.dtype)


@dataclass(frozen=True)
class DiscreteSchedule:
    """Discrete-data BFN (Graves et al., 2023, Sec. 6) with K classes and accuracy β(t) = β₁ t².

    The latent logits follow ``z_t = β(t)(K e_x − 1) + sqrt(K β(t)) ε`` and the network sees ``θ = softmax(z)``
    (BFN eq. 179-182; Xue et al., Sec. 5).
    """

    num_classes: int
    beta_1: float = 0.5625  # official text8 checkpoint: max_sqrt_beta = 0.75

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.beta_1 <= 0:
            raise ValueError(f"beta_1 must be > 0, got {self.beta_1}")

    def beta(self, t: float | torch.Tensor) -> torch.Tensor:
        """β(t) = β₁ t² (BFN eq. 186)."""
        return self.beta_1 * _f64(t) ** 2

    def f(self, t: float | torch.Tensor) -> torch.Tensor:
        """Drift coefficient of the forward latent SDE in τ: f = −2/(1 − τ) = −2/t (Theorem 5.1)."""
        return -2.0 / _f64(t)

    def g2(self, t: float | torch.Tensor) -> torch.Tensor:
        """Squared diffusion coefficient in τ: g² = 2 K β₁ (1 − τ) = 2 K β₁ t (Theorem 5.1)."""
        return 2.0 * self.num_classes * self.beta_1 * _f64(t)

    def lambda_(self, t: float | torch.Tensor) -> torch.Tensor:
        """Log signal-to-noise ratio of the latents, ½ log(K β(t)): the true class's mean exceeds the others' by
        K β while each coordinate's noise has standard deviation sqrt(K β)."""
        return 0.5 * torch.log(self.num_classes * self.beta(t))

    def t_from_lambda(self, lam: float | torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.exp(2.0 * _f64(lam)) / (self.num_classes * self.beta_1))

    def bfn_alpha(self, i: int, n: int) -> float:
        """Accuracy of the i-th of n steps of the original sampler: α_i = β₁(2i − 1)/n² (BFN eq. 188)."""
        return self.beta_1 * (2 * i - 1) / n**2

    def sample_z(
        self, x: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None, dtype=torch.float32
    ) -> torch.Tensor:
        """Forward process for class ids ``x`` (B, ...) at per-row times ``t`` (B,): latent logits (B, ..., K)."""
        k = self.num_classes
        e = torch.nn.functional.one_hot(x.long(), k).to(torch.float64)
        beta = self.beta(t).to(x.device).reshape(-1, *([1] * x.ndim))
        eps = randn(e.shape, generator, device=x.device, dtype=torch.float64)
        return (beta * (k * e - 1) + torch.sqrt(k * beta) * eps).to(dtype)

    def sample_theta(
        self, x: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None, dtype=torch.float32
    ) -> torch.Tensor:
        """The network input θ = softmax(z_t) (BFN eq. 182)."""
        return torch.softmax(self.sample_z(x, t, generator, torch.float64), dim=-1).to(dtype)


def time_grid(
    schedule: ContinuousSchedule | DiscreteSchedule, steps: int, eta: float, spacing: Spacing = "time"
) -> torch.Tensor:
    """Increasing BFN times ``t_0 = η < ... < t_N = 1`` (float64): uniform in t (the official grid, uniform in
    τ from 1 − η to 0) or uniform in the half log-SNR λ."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 <= eta < 1.0:
        raise ValueError(f"eta must be in [0, 1), got {eta}")
    if spacing == "time":
        return eta + (1.0 - eta) * torch.arange(steps + 1, dtype=torch.float64) / steps
    if spacing == "logsnr":
        if eta <= 0.0:
            raise ValueError("a log-SNR grid needs eta > 0 (λ = −∞ at t = 0)")
        lo, hi = schedule.lambda_(eta), schedule.lambda_(1.0)
        lam = lo + (hi - lo) * torch.arange(steps + 1, dtype=torch.float64) / steps
        grid = schedule.t_from_lambda(lam)
        grid[0], grid[-1] = eta, 1.0  # exact end points despite round-off in the inverse
        return grid
    raise ValueError(f"unknown spacing {spacing!r}: use 'time' or 'logsnr'")
