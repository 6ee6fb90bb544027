"""The CPU toy: a small scene of coloured Gaussians, its exact analytic denoiser, and a held-out-view error."""

from __future__ import annotations

import math

import torch

from microdreamer.cameras import Cameras, orbit_cameras
from microdreamer.denoisers import AnalyticDenoiser
from microdreamer.gaussians import GaussianModel

__all__ = ["HeldOut", "toy_denoiser", "toy_scene"]


def toy_scene(num: int = 16, seed: int = 0, radius: float = 0.35) -> GaussianModel:
    """``num`` opaque, saturated Gaussians (σ 0.05–0.09, below the final prune's 0.1) in a ball: an object with distinct sides."""
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(num, 3, generator=g)
    means = d / d.norm(dim=-1, keepdim=True) * radius * torch.rand(num, 1, generator=g).pow(1 / 3)
    scales = 0.05 + 0.04 * torch.rand(num, 3, generator=g)
    hue = torch.rand(num, generator=g) * 2 * math.pi
    colors = 0.5 + 0.45 * torch.stack([hue.cos(), (hue + 2.09).cos(), (hue + 4.19).cos()], -1)
    opac = 0.85 + 0.1 * torch.rand(num, generator=g)
    quats = torch.randn(num, 4, generator=g)
    return GaussianModel.from_activated(means, scales, colors, opac, quats)


def toy_denoiser(
    scene: GaussianModel | None = None, *, data_std: float = 0.02, seed: int = 0
) -> AnalyticDenoiser:
    return AnalyticDenoiser(scene if scene is not None else toy_scene(seed=seed), data_std=data_std)


class HeldOut:
    """Mean |render − truth| over views the optimisers never sample (azimuths offset by 22.5°, three elevations)."""

    def __init__(self, denoiser: AnalyticDenoiser, *, size: int = 32, radius: float = 2.0, views: int = 8):
        az = torch.arange(views, dtype=torch.float64) * (360 / views) + 22.5 - 180
        el = torch.tensor([-20.0, 5.0, 25.0]).repeat(math.ceil(views / 3))[:views]
        self.cameras: Cameras = orbit_cameras(el, az, radius, size=size)
        self.truth = denoiser.target(self.cameras)

    @torch.no_grad()
    def __call__(self, model: GaussianModel) -> float:
        pred = model.render(self.cameras.to(model.xyz.device)).image
        return float((pred - self.truth.to(pred)).abs().mean())
