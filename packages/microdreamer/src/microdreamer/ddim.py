"""DDIM on the released grid (diffusers' DDIMScheduler / DDIMInverseScheduler with MicroDreamer's
scheduler_config.json: scaled-linear betas 0.00085→0.012, 1000 steps, "leading" spacing, steps_offset 1,
set_alpha_to_one False, ε-prediction, no clipping), written out so the SIR loop needs no diffusers.

Song et al. 2021, eq. 12: x_{t'} = √ᾱ_{t'} x̂₀ + √(1 − ᾱ_{t'} − σ²) ε̂ + σ z with σ = η √((1−ᾱ_{t'})/(1−ᾱ_t)) √(1 − ᾱ_t/ᾱ_{t'});
the inverse step runs the η = 0 update upwards (x_{t'} with t' > t from ε̂ at t).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

__all__ = ["DDIMGrid", "scaled_linear_alphas_cumprod"]


def scaled_linear_alphas_cumprod(
    beta_start: float = 0.00085, beta_end: float = 0.012, num_train_timesteps: int = 1000
) -> torch.Tensor:
    """ᾱ_t of Stable Diffusion's scaled-linear schedule (float64)."""
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, 0)


@dataclass(frozen=True)
class DDIMGrid:
    """The N-step DDIM grid: ``timesteps`` descending (951, 901, …, 1 for N = 20), ``inverse_timesteps`` ascending."""

    num_steps: int
    alphas_cumprod: torch.Tensor | None = None
    steps_offset: int = 1
    num_train_timesteps: int = 1000

    def __post_init__(self):
        if self.num_steps < 1 or self.num_steps > self.num_train_timesteps:
            raise ValueError(f"DDIM steps must be in 1..{self.num_train_timesteps}, got {self.num_steps}")
        if self.alphas_cumprod is None:
            object.__setattr__(
                self,
                "alphas_cumprod",
                scaled_linear_alphas_cumprod(num_train_timesteps=self.num_train_timesteps),
            )

    @property
    def step_ratio(self) -> int:
        return self.num_train_timesteps // self.num_steps

    @cached_property
    def inverse_timesteps(self) -> list[int]:
        return [i * self.step_ratio + self.steps_offset for i in range(self.num_steps)]

    @cached_property
    def timesteps(self) -> list[int]:
        return self.inverse_timesteps[::-1]

    @property
    def final_alpha_cumprod(self) -> float:
        return float(self.alphas_cumprod[0])  # set_alpha_to_one = False

    def alpha(self, t: int) -> float:
        return float(self.alphas_cumprod[t]) if t >= 0 else self.final_alpha_cumprod

    def add_noise(self, x: torch.Tensor, noise: torch.Tensor, t: int) -> torch.Tensor:
        a = self.alpha(t)
        return a**0.5 * x + (1 - a) ** 0.5 * noise

    def step(
        self,
        eps: torch.Tensor,
        t: int,
        x: torch.Tensor,
        *,
        eta: float = 0.0,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One DDIM step from t to t − step_ratio (eq. 12)."""
        a_t, a_prev = self.alpha(t), self.alpha(t - self.step_ratio)
        x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t**0.5
        var = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
        sigma = eta * var**0.5
        out = a_prev**0.5 * x0 + max(1 - a_prev - sigma**2, 0.0) ** 0.5 * eps
        if eta > 0:
            if noise is None:
                raise ValueError("η > 0 needs noise")
            out = out + sigma * noise
        return out

    def inverse_step(self, eps: torch.Tensor, t_next: int, x: torch.Tensor) -> torch.Tensor:
        """DDIM inversion from t_next − step_ratio to t_next with ε̂ evaluated at the lower time (diffusers'
        DDIMInverseScheduler.step(eps, t_next, x))."""
        t = min(t_next - self.step_ratio, self.num_train_timesteps - 1)
        a_t = self.alpha(t) if t >= 0 else self.final_alpha_cumprod
        a_next = self.alpha(t_next)
        x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t**0.5
        return a_next**0.5 * x0 + (1 - a_next) ** 0.5 * eps
