"""Orbit cameras in DreamGaussian's convention (the released code's `cam_utils.orbit_camera`).

Elevation runs from +y (−90°) to −y (+90°): a *negative* elevation looks down on the object; azimuth 0 looks
along −z from +z, azimuth 90 from +x. Poses are OpenGL camera-to-world; the rasteriser uses the OpenCV
world-to-camera matrix (x right, y down, z forward) derived from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Cameras", "orbit_cameras", "orbit_pose"]


def orbit_pose(elevation: float, azimuth: float, radius: float) -> torch.Tensor:
    """The 4×4 OpenGL camera-to-world pose looking at the origin (float64)."""
    el, az = math.radians(elevation), math.radians(azimuth)
    campos = torch.tensor(
        [radius * math.cos(el) * math.sin(az), -radius * math.sin(el), radius * math.cos(el) * math.cos(az)],
        dtype=torch.float64,
    )
    forward = campos / campos.norm()  # OpenGL: the camera looks along −forward
    up = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    right = torch.linalg.cross(up, forward)
    right = right / right.norm().clamp_min(1e-12)
    up = torch.linalg.cross(forward, right)
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, :3] = torch.stack([right, up, forward], dim=1)
    pose[:3, 3] = campos
    return pose


@dataclass(frozen=True)
class Cameras:
    """A batch of V pinhole cameras that share intrinsics (square pixels, principal point at the centre).

    ``viewmats`` are OpenCV world-to-camera matrices [V, 4, 4]; ``elevations``/``azimuths`` (degrees) and
    ``radii`` are kept for the denoisers' camera embeddings (Zero123's relative pose, MVDream's matrices).
    """

    viewmats: torch.Tensor
    fovy: float  # radians
    width: int
    height: int
    elevations: torch.Tensor
    azimuths: torch.Tensor
    radii: torch.Tensor
    near: float = 0.01

    def __len__(self) -> int:
        return int(self.viewmats.shape[0])

    @property
    def fy(self) -> float:
        return self.height / (2.0 * math.tan(self.fovy / 2))

    @property
    def fx(self) -> float:
        # DreamGaussian derives fovx from fovy and the aspect ratio, so fx == fy
        return self.fy

    def c2w_opengl(self) -> torch.Tensor:
        """[V, 4, 4] OpenGL camera-to-world poses (what MVDream/ImageDream embed)."""
        return torch.stack(
            [
                orbit_pose(float(e), float(a), float(r))
                for e, a, r in zip(self.elevations, self.azimuths, self.radii)
            ]
        )

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Cameras:
        return Cameras(
            self.viewmats.to(device=device, dtype=dtype or self.viewmats.dtype),
            self.fovy,
            self.width,
            self.height,
            self.elevations,
            self.azimuths,
            self.radii,
            self.near,
        )

    def index(self, idx: slice | list[int]) -> Cameras:
        if isinstance(idx, list):
            idx = torch.tensor(idx, dtype=torch.long)
        return Cameras(
            self.viewmats[idx],
            self.fovy,
            self.width,
            self.height,
            self.elevations[idx],
            self.azimuths[idx],
            self.radii[idx],
            self.near,
        )

    def with_size(self, size: int) -> Cameras:
        return Cameras(
            self.viewmats, self.fovy, size, size, self.elevations, self.azimuths, self.radii, self.near
        )


def orbit_cameras(
    elevations, azimuths, radius: float | list[float] = 2.0, *, size: int = 256, fovy_deg: float = 49.1
) -> Cameras:
    """Cameras on an orbit around the origin (released defaults: radius 2, fovy 49.1°, 256 px)."""
    el = torch.as_tensor(elevations, dtype=torch.float64).reshape(-1)
    az = torch.as_tensor(azimuths, dtype=torch.float64).reshape(-1)
    el, az = torch.broadcast_tensors(el, az)
    rad = torch.as_tensor(radius, dtype=torch.float64).reshape(-1).expand_as(el).clone()
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # OpenGL → OpenCV camera axes
    mats = []
    for e, a, r in zip(el.tolist(), az.tolist(), rad.tolist()):
        pose = orbit_pose(e, a, r)
        rot = flip @ pose[:3, :3].T
        w2c = torch.eye(4, dtype=torch.float64)
        w2c[:3, :3] = rot
        w2c[:3, 3] = -rot @ pose[:3, 3]
        mats.append(w2c)
    return Cameras(torch.stack(mats).float(), math.radians(fovy_deg), size, size, el.clone(), az.clone(), rad)
