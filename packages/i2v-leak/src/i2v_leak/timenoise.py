"""TimeNoise (Sec. 5, Eqs. 6–7): time-dependent noise on the conditional image during training.

At large diffusion times an image-to-video model can lean on the clean conditional image instead of denoising, and
its videos lose motion ("conditional image leakage"). TimeNoise perturbs the condition, c̃ = c + β_s ε, with a noise
level that grows with t:

    β_s = β_m · sigmoid(y),   y ~ N(μ(t), s²),   μ(t) = 2 μ_max t^a − μ_max,   t ∈ [0, 1]

a logit-normal on (0, β_m) whose centre moves from −μ_max to +μ_max as t goes from 0 to 1 (slowly at first for
a > 1). Properties the tests check: β_s ∈ (0, β_m); the median is β_m·sigmoid(μ(t)); every quantile increases
with t. The official code fixes s = 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["TimeNoise"]


@dataclass(frozen=True)
class TimeNoise:
    """The TimeNoise distribution of β_s given normalised time t ∈ [0, 1].

    beta_m: the largest noise level (SVD 15, DynamiCrafter / VideoCrafter1 100);
    a: exponent of the centre μ(t) (5 in the paper: little noise until late in the process);
    mu_max: half-range of the centre (1; the official VideoCrafter1 code uses 4 through a default-argument bug);
    s: standard deviation of the logit (1 in the paper and code).
    """

    beta_m: float = 100.0
    a: float = 5.0
    mu_max: float = 1.0
    s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("beta_m", "a", "s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"TimeNoise.{name} must be finite and > 0, got {v}")
        if not math.isfinite(self.mu_max):
            raise ValueError(f"TimeNoise.mu_max must be finite, got {self.mu_max}")

    def mu(self, t: torch.Tensor | float) -> torch.Tensor:
        """μ(t) = 2 μ_max t^a − μ_max (Eq. 7). ``t`` is clamped to [0, 1]."""
        tt = t if isinstance(t, torch.Tensor) else torch.tensor(t, dtype=torch.float64)
        if not tt.is_floating_point():
            tt = tt.double()
        tt = tt.clamp(0.0, 1.0)
        return 2 * self.mu_max * tt.pow(self.a) - self.mu_max

    def quantile(self, q: float | torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """The q-quantile of β_s at time t: β_m · sigmoid(μ(t) + s Φ⁻¹(q)) (sigmoid is monotone)."""
        mu = self.mu(t)
        qq = torch.as_tensor(q, dtype=mu.dtype, device=mu.device)
        z = torch.special.ndtri(qq)
        return self.beta_m * torch.sigmoid(mu + self.s * z)

    def median(self, t: torch.Tensor | float) -> torch.Tensor:
        """β_m · sigmoid(μ(t))."""
        return self.beta_m * torch.sigmoid(self.mu(t))

    def cdf(self, beta: torch.Tensor | float, t: torch.Tensor | float) -> torch.Tensor:
        """P(β_s ≤ beta | t) = Φ((logit(beta/β_m) − μ(t)) / s)."""
        mu = self.mu(t)
        b = torch.as_tensor(beta, dtype=mu.dtype, device=mu.device) / self.beta_m
        inside = (b > 0) & (b < 1)
        logit = torch.logit(b.clamp(1e-300, 1 - 1e-16))
        val = torch.special.ndtr((logit - mu) / self.s)
        return torch.where(inside, val, (b >= 1).to(val.dtype))

    def pdf(self, beta: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """Density of β_s at ``beta`` (logit-normal on (0, β_m)), for plots."""
        mu = self.mu(t)
        b = torch.as_tensor(beta, dtype=mu.dtype, device=mu.device) / self.beta_m
        b = b.clamp(1e-12, 1 - 1e-12)
        z = (torch.logit(b) - mu) / self.s
        return torch.exp(-0.5 * z * z) / (self.s * math.sqrt(2 * math.pi) * b * (1 - b) * self.beta_m)

    def sample(self, t: torch.Tensor | float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw one β_s per entry of ``t`` (Eq. 6), same shape as ``t``; the logit noise is drawn on the
        generator's device."""
        tt = torch.as_tensor(t, dtype=torch.float32) if not isinstance(t, torch.Tensor) else t.float()
        gen_dev = generator.device if generator is not None else torch.device("cpu")
        y = torch.randn(tt.shape, generator=generator, device=gen_dev, dtype=torch.float32).to(tt.device)
        return self.beta_m * torch.sigmoid(self.mu(tt) + self.s * y)

    def apply(
        self,
        cond: torch.Tensor,
        t: torch.Tensor | float,
        generator: torch.Generator | None = None,
        beta: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """c̃ = c + β_s ε with one β_s per batch element (dim 0 of ``cond``) and ε ~ N(0, I) of ``cond``'s shape.

        Returns (c̃, β_s) with β_s of shape (B,). ``t`` is a scalar or (B,) in [0, 1]; pass ``beta`` to reuse
        levels already drawn.
        """
        b = cond.shape[0]
        tt = torch.as_tensor(t, dtype=torch.float32, device=cond.device).reshape(-1)
        if tt.numel() == 1:
            tt = tt.expand(b)
        if tt.numel() != b:
            raise ValueError(f"t has {tt.numel()} entries for a batch of {b}")
        if beta is None:
            beta = self.sample(tt, generator)
        beta = beta.to(cond.device, torch.float32).reshape(b)
        gen_dev = generator.device if generator is not None else torch.device("cpu")
        eps = torch.randn(cond.shape, generator=generator, device=gen_dev, dtype=torch.float32).to(
            cond.device
        )
        scale = beta.reshape(b, *([1] * (cond.ndim - 1)))
        return (cond.float() + scale * eps).to(cond.dtype), beta
