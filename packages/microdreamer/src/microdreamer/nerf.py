"""A small pure-PyTorch NeRF: an explicit voxel radiance field (density + colour grids sampled trilinearly, as in
DVGO/Plenoxels) volume-rendered along camera rays (Mildenhall et al. 2020, eq. 3: C = Σ T_i (1 − e^{−σ_i δ_i}) c_i).

SIR is representation-agnostic (the paper runs it on NeRF in threestudio); this backend gives the same loops a NeRF on
the CPU. It offers the parts of :class:`~microdreamer.gaussians.GaussianModel` the loops use (render, optimiser,
learning-rate hook, densification hooks that do nothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from microdreamer.cameras import Cameras
from microdreamer.gaussians import Adam, GaussianTrainConfig
from microdreamer.rasterizer import RenderOutput

__all__ = ["VoxelNeRF", "camera_rays"]


def camera_rays(cameras: Cameras, device) -> tuple[torch.Tensor, torch.Tensor]:
    """World-space ray origins [V, 3] and unit directions [V, H, W, 3] through the pixel centres."""
    H, W = cameras.height, cameras.width
    vm = cameras.viewmats.to(device)
    R, t = vm[:, :3, :3], vm[:, :3, 3]
    origin = -torch.einsum("vji,vj->vi", R, t)
    ys, xs = torch.meshgrid(torch.arange(H, device=device), torch.arange(W, device=device), indexing="ij")
    d_cam = torch.stack(
        [(xs - (W - 1) / 2) / cameras.fx, (ys - (H - 1) / 2) / cameras.fy, torch.ones(H, W, device=device)],
        -1,
    ).float()
    d = torch.einsum("vji,hwj->vhwi", R, d_cam)
    return origin, d / d.norm(dim=-1, keepdim=True)


@dataclass(frozen=True)
class _NoDensify(GaussianTrainConfig):
    density_end_iter: int = -1  # a field has nothing to densify


class FieldHooks:
    """The Gaussian loop's hooks a radiance field has no use for (a constant lr, nothing to densify or prune); a
    NeRF backend inherits them so `run_sir`/`run_sds` drive it unchanged."""

    lr: float
    config = _NoDensify()

    def update_learning_rate(self, step: int) -> float:
        return self.lr

    def add_densification_stats(self, out, views=None) -> None:
        return None

    def densify_and_prune(self, *args, **kwargs) -> dict[str, int]:
        return {"cloned": 0, "split": 0, "pruned": 0}

    def prune(self, *args, **kwargs) -> int:
        return 0


class VoxelNeRF(FieldHooks):
    def __init__(
        self, resolution: int = 32, bound: float = 0.8, samples: int = 48, lr: float = 0.05, *, generator=None
    ):
        g = generator
        self.bound, self.samples, self.lr = bound, samples, lr
        self.params = {
            "density": (
                torch.randn(1, 1, resolution, resolution, resolution, generator=g) * 0.1 - 2.0
            ).requires_grad_(True),
            "color": (
                torch.randn(1, 3, resolution, resolution, resolution, generator=g) * 0.1
            ).requires_grad_(True),
        }
        self.optimizer: Adam | None = None

    def __len__(self) -> int:
        return self.params["density"].numel()

    @property
    def xyz(self) -> torch.Tensor:  # the loops read the device from here
        return self.params["density"]

    def training_setup(self, config=None) -> Adam:
        self.optimizer = Adam([{"params": [p], "lr": self.lr, "name": n} for n, p in self.params.items()])
        return self.optimizer

    def render(
        self, cameras: Cameras, background=(1.0, 1.0, 1.0), *, track_means2d=False, rasterizer=None
    ) -> RenderOutput:
        dev = self.params["density"].device
        V, H, W = len(cameras), cameras.height, cameras.width
        origin, d = camera_rays(cameras, dev)
        # march the segment of the ray through the bounding sphere's depth range
        dist = origin.norm(dim=-1)
        near, far = (dist - self.bound * math.sqrt(3)).clamp(min=0.05), dist + self.bound * math.sqrt(3)
        s = torch.linspace(0, 1, self.samples, device=dev)
        z = near[:, None] + (far - near)[:, None] * s[None]  # [V, S]
        pts = origin[:, None, None, None] + d[:, :, :, None] * z[:, None, None, :, None]  # [V, H, W, S, 3]
        grid = (pts / self.bound).reshape(1, V * H * W, self.samples, 1, 3)
        sig = F.grid_sample(self.params["density"], grid, align_corners=True, padding_mode="zeros")
        rgb = F.grid_sample(self.params["color"], grid, align_corners=True, padding_mode="border")
        inside = (grid.abs() <= 1).all(-1).reshape(V, H, W, self.samples)
        sig = F.softplus(sig.reshape(V, H, W, self.samples) + 0.0) * 20 * inside
        rgb = torch.sigmoid(rgb.reshape(3, V, H, W, self.samples)).permute(1, 2, 3, 4, 0)
        delta = ((far - near) / (self.samples - 1))[:, None, None, None]
        alpha = 1 - torch.exp(-sig * delta)
        trans = torch.cumprod(
            torch.cat([torch.ones_like(alpha[..., :1]), 1 - alpha[..., :-1] + 1e-10], -1), -1
        )
        w = alpha * trans
        acc = w.sum(-1)
        bg = torch.as_tensor(background, dtype=acc.dtype, device=dev)
        img = (w[..., None] * rgb).sum(-2) + (1 - acc)[..., None] * bg
        depth = (w * z[:, None, None, :]).sum(-1)
        zeros = torch.zeros(V, 0, 2, device=dev)
        return RenderOutput(
            img.permute(0, 3, 1, 2),
            acc[:, None],
            depth[:, None],
            zeros,
            torch.zeros(V, 0, dtype=torch.int32),
            0,
        )
