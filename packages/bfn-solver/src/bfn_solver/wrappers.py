"""Adapters between the noise-prediction convention and data prediction, and the t-broadcasting adapter for
networks written for the official samplers (which pass ``t`` with the data's shape)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bfn_solver.schedules import ContinuousSchedule

__all__ = ["BroadcastTime", "DataPredictionModel", "NoisePredictionModel"]

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class DataPredictionModel(nn.Module):
    """x̂(μ, t) of a noise-prediction model: x̂ = μ/γ − sqrt((1 − γ)/γ) ε̂ (BFN eq. 84), float64 coefficients,
    optionally clipped. At t < ``t_min`` it returns the prior mean 0, as the official code does."""

    def __init__(
        self, model: Model, schedule: ContinuousSchedule, clip: float | None = None, t_min: float = 1e-6
    ) -> None:
        super().__init__()
        self.model = model
        self.schedule = schedule
        self.clip = clip
        self.t_min = t_min

    def forward(self, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tt = t.double().clamp(min=self.t_min)
        x0 = self.schedule.eps_to_x0(mu, self.model(mu, t), tt.cpu())
        x0 = torch.where((t < self.t_min).reshape(-1, *([1] * (mu.ndim - 1))), torch.zeros_like(x0), x0)
        return x0 if self.clip is None else x0.clamp(-self.clip, self.clip)


class NoisePredictionModel(nn.Module):
    """Turn a data-prediction network ``x0_model(mu, t) -> x̂`` into the package's ``model(mu, t) -> ε̂``:
    ε̂ = (μ − γ x̂)/sqrt(γ(1 − γ)). (Undefined at t = 0, which the solvers never evaluate.)"""

    def __init__(self, x0_model: Model, schedule: ContinuousSchedule) -> None:
        super().__init__()
        self.x0_model = x0_model
        self.schedule = schedule

    def forward(self, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.schedule.x0_to_eps(mu, self.x0_model(mu, t), t.double().cpu())


class BroadcastTime(nn.Module):
    """Call a network that expects ``t`` with the data's shape (the nnaisense/BFN-Solver convention,
    e.g. (B, L) for text or (B, H, W, C) for images) with the package's ``t`` of shape (B,)."""

    def __init__(
        self, model: Model, time_shape: Callable[[torch.Tensor], tuple[int, ...]] | None = None
    ) -> None:
        super().__init__()
        self.model = model
        self.time_shape = time_shape

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        shape = self.time_shape(x) if self.time_shape is not None else tuple(x.shape)
        return self.model(x, t.reshape(-1, *([1] * (len(shape) - 1))).expand(shape))
