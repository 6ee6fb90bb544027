"""Continuous-time BFN training losses (Graves et al., 2023, eqs. 101 and 205), which Xue et al. (2024,
Sec. 4.2 and 5.2) show to be denoising score matching for the corresponding SDEs.

- continuous data: L∞ = −ln σ₁ · σ₁^{−2t} ‖x − x̂(μ_t, t)‖², t ~ U(0, 1), with the network predicting ε̂ and
  x̂ = μ/γ − sqrt((1 − γ)/γ) ε̂ clipped to the data range (the official DeltaFactory clip), and x̂ = 0 below
  t = 1e-6 as in the official code;
- discrete data: L∞ = K β₁ t ‖e_x − ê(θ_t, t)‖², t ~ U(0, 1), θ_t = softmax(z_t).

Both return one value per sample (B,), averaged over the data dimensions as the official code does (the paper's
sums are D times larger; the scale only changes the effective learning rate).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
from gen_common.seeding import rand

__all__ = ["continuous_time_loss", "discrete_time_loss"]

T_MIN = 1e-6


def continuous_time_loss(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    schedule: ContinuousSchedule,
    generator: torch.Generator | None = None,
    *,
    t: torch.Tensor | None = None,
    clip: float | None = 1.0,
) -> torch.Tensor:
    """Per-sample continuous-time loss for data ``x`` (B, ...) and a noise-prediction ``model(mu, t)``."""
    b = x.shape[0]
    t64 = rand((b,), generator, dtype=torch.float64) if t is None else t.double().cpu()
    mu, _ = schedule.sample_mu(x, t64, generator)
    eps_hat = model(mu, t64.to(device=x.device, dtype=x.dtype))
    tc = t64.clamp(min=T_MIN)
    x0 = schedule.eps_to_x0(mu.float(), eps_hat.float(), tc)
    keep = (t64 >= T_MIN).to(x.device).reshape(-1, *([1] * (x.ndim - 1)))
    x0 = torch.where(keep, x0, torch.zeros_like(x0))
    if clip is not None:
        x0 = x0.clamp(-clip, clip)
    weight = (-schedule.log_sigma_1 * schedule.accuracy(t64)).to(device=x.device, dtype=torch.float32)
    return weight * (x.float() - x0).pow(2).reshape(b, -1).mean(1)


def discrete_time_loss(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    schedule: DiscreteSchedule,
    generator: torch.Generator | None = None,
    *,
    t: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Per-sample continuous-time loss for class ids ``x`` (B, ...) and a ``model(theta, t) -> logits``."""
    b, k = x.shape[0], schedule.num_classes
    if int(x.max()) >= k or int(x.min()) < 0:
        raise ValueError(f"class ids must lie in [0, {k}), got range [{int(x.min())}, {int(x.max())}]")
    t64 = rand((b,), generator, dtype=torch.float64) if t is None else t.double().cpu()
    theta = schedule.sample_theta(x, t64, generator, dtype=dtype)
    logits = model(theta, t64.to(device=x.device, dtype=dtype))
    e_hat = torch.softmax(logits.float(), dim=-1)
    e_x = torch.nn.functional.one_hot(x.long(), k).float()
    weight = (k * schedule.beta_1 * t64).to(device=x.device, dtype=torch.float32)
    return weight * (e_x - e_hat).pow(2).sum(-1).reshape(b, -1).mean(1)
