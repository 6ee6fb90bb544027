"""Noise schedules of the absorbing process (RADD §2, following SEDD).

A schedule gives the total noise σ̄(t) and its rate σ̄′(t) for t ∈ [0, 1]. Each token is independently replaced by
the mask with probability π(t) = 1 − e^{−σ̄(t)} (the "mask probability"). Every quantity the losses and samplers
need is a function of σ̄ and σ̄′ only, so a schedule is two formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

__all__ = ["GeometricSchedule", "LogLinearSchedule", "NoiseSchedule", "get_schedule"]


@runtime_checkable
class NoiseSchedule(Protocol):
    """σ̄(t) (``total``) and σ̄′(t) (``rate``); the rest derives from them."""

    def total(self, t: torch.Tensor) -> torch.Tensor: ...

    def rate(self, t: torch.Tensor) -> torch.Tensor: ...


def mask_prob(schedule: NoiseSchedule, t: torch.Tensor) -> torch.Tensor:
    """π(t) = 1 − e^{−σ̄(t)}, computed with expm1 so that small σ̄ keeps its precision."""
    return -torch.expm1(-schedule.total(t))


def dce_weight(schedule: NoiseSchedule, t: torch.Tensor) -> torch.Tensor:
    """σ̄′(t) / (e^{σ̄(t)} − 1): the weight of a masked token's −log p in the t-DCE loss (RADD Eq. (10))."""
    return schedule.rate(t) / torch.expm1(schedule.total(t))


@dataclass(frozen=True)
class LogLinearSchedule:
    """σ̄(t) = −log(1 − (1−ε)t): the mask probability is (1−ε)t, linear in t (the RADD/SEDD default)."""

    eps: float = 1e-3

    def __post_init__(self) -> None:
        if not 0.0 <= self.eps < 1.0:
            raise ValueError("LogLinearSchedule.eps must be in [0, 1)")

    def total(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.log1p(-(1.0 - self.eps) * t)

    def rate(self, t: torch.Tensor) -> torch.Tensor:
        return (1.0 - self.eps) / (1.0 - (1.0 - self.eps) * t)


@dataclass(frozen=True)
class GeometricSchedule:
    """σ̄(t) = σ_min^{1−t} σ_max^t (SEDD's geometric schedule)."""

    sigma_min: float = 1e-4
    sigma_max: float = 20.0

    def __post_init__(self) -> None:
        if not 0.0 < self.sigma_min < self.sigma_max:
            raise ValueError("GeometricSchedule needs 0 < sigma_min < sigma_max")

    def total(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min ** (1.0 - t) * self.sigma_max**t

    def rate(self, t: torch.Tensor) -> torch.Tensor:
        return self.total(t) * math.log(self.sigma_max / self.sigma_min)


def get_schedule(schedule: str | NoiseSchedule | None) -> NoiseSchedule:
    """``"loglinear"`` (default), ``"geometric"``, or a schedule object (returned as is)."""
    if schedule is None:
        return LogLinearSchedule()
    if isinstance(schedule, str):
        key = schedule.strip().lower().replace("-", "").replace("_", "")
        if key in ("loglinear", "linear"):
            return LogLinearSchedule()
        if key == "geometric":
            return GeometricSchedule()
        raise ValueError(f"unknown noise schedule {schedule!r}: use 'loglinear' or 'geometric'")
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError("a schedule needs total(t) and rate(t) methods")
    return schedule
