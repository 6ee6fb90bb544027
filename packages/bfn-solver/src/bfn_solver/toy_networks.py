"""Small networks for the trainer's toy data: MLPs over flat vectors (continuous, noise prediction) and over
short sequences of categorical variables (discrete, class logits). Both follow the package's model convention
and save/load with ``save_pretrained`` / ``from_pretrained``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
from gen_common.pretrained import PretrainedMixin

__all__ = ["ContinuousMLP", "ContinuousMLPConfig", "DiscreteMLP", "DiscreteMLPConfig"]


def _time_features(t: torch.Tensor, n: int) -> torch.Tensor:
    """[t, sin(2π f t), cos(2π f t)] for f = 1..n/2: smooth features of the BFN time in [0, 1]."""
    freqs = torch.arange(1, n // 2 + 1, device=t.device, dtype=t.dtype)
    arg = 2 * math.pi * t[:, None] * freqs
    return torch.cat([t[:, None], arg.sin(), arg.cos()], dim=1)


def _mlp(d_in: int, d_out: int, hidden: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = d_in
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.SiLU()]
        d = hidden
    mods.append(nn.Linear(d, d_out))
    return nn.Sequential(*mods)


@dataclass(frozen=True)
class ContinuousMLPConfig:
    dim: int = 2
    hidden: int = 128
    layers: int = 3
    time_features: int = 16
    sigma_1: float = 0.001


class ContinuousMLP(PretrainedMixin, nn.Module):
    """``model(mu (B, D), t (B,)) -> ε̂ (B, D)``. The input mean is divided by its prior scale
    sqrt(γ(1 − γ) + γ²) so the network sees O(1) inputs at every t."""

    config_class = ContinuousMLPConfig

    def __init__(self, config: ContinuousMLPConfig) -> None:
        super().__init__()
        self.config = config
        self.net = _mlp(config.dim + config.time_features + 1, config.dim, config.hidden, config.layers)

    @property
    def schedule(self) -> ContinuousSchedule:
        return ContinuousSchedule(self.config.sigma_1)

    def forward(self, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if mu.ndim != 2 or mu.shape[1] != self.config.dim:
            raise ValueError(f"expected mu of shape (B, {self.config.dim}), got {tuple(mu.shape)}")
        g = self.schedule.gamma(t.detach().double().cpu()).to(device=mu.device, dtype=mu.dtype)
        scale = torch.sqrt(g * (1 - g) + g**2).clamp_min(1e-6)[:, None]
        h = torch.cat([mu / scale, _time_features(t.to(mu.dtype), self.config.time_features)], dim=1)
        return self.net(h)


@dataclass(frozen=True)
class DiscreteMLPConfig:
    length: int = 2
    num_classes: int = 4
    hidden: int = 128
    layers: int = 3
    time_features: int = 16
    beta_1: float = 3.0


class DiscreteMLP(PretrainedMixin, nn.Module):
    """``model(theta (B, L, K), t (B,)) -> logits (B, L, K)`` over the flattened input 2θ − 1."""

    config_class = DiscreteMLPConfig

    def __init__(self, config: DiscreteMLPConfig) -> None:
        super().__init__()
        self.config = config
        lk = config.length * config.num_classes
        self.net = _mlp(lk + config.time_features + 1, lk, config.hidden, config.layers)

    @property
    def schedule(self) -> DiscreteSchedule:
        return DiscreteSchedule(self.config.num_classes, self.config.beta_1)

    def forward(self, theta: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        l, k = self.config.length, self.config.num_classes
        if theta.ndim != 3 or theta.shape[1:] != (l, k):
            raise ValueError(f"expected theta of shape (B, {l}, {k}), got {tuple(theta.shape)}")
        h = torch.cat(
            [
                (2 * theta - 1).reshape(theta.shape[0], -1),
                _time_features(t.to(theta.dtype), self.config.time_features),
            ],
            1,
        )
        return self.net(h).reshape(theta.shape)
