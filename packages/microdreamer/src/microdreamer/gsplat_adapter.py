"""The CUDA rasteriser path: gsplat's ``rasterization`` behind the same call signature as
:func:`microdreamer.rasterizer.rasterize_gaussians` (pip install "microdreamer[gsplat]"; CUDA only: gsplat's torch
path still calls CUDA kernels). Same conventions: OpenCV world-to-camera matrices, principal point at the image
centre, 0.3-pixel low-pass (``eps2d``), α ≥ 1/255, white background by default."""

from __future__ import annotations

import torch

from microdreamer.cameras import Cameras
from microdreamer.rasterizer import RenderOutput

__all__ = ["gsplat_available", "rasterize_gsplat"]


def gsplat_available() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401
    except ImportError:
        return False
    return True


def rasterize_gsplat(
    means,
    scales,
    quats,
    opacities,
    colors,
    cameras: Cameras,
    *,
    background=(1.0, 1.0, 1.0),
    scale_modifier=1.0,
    low_pass=0.3,
    clamp_output=True,
    track_means2d=False,
) -> RenderOutput:
    try:
        from gsplat import rasterization
    except ImportError as exc:
        raise ImportError('the gsplat rasteriser needs gsplat: pip install "microdreamer[gsplat]"') from exc
    dev, V, H, W = means.device, len(cameras), cameras.height, cameras.width
    K = torch.tensor(
        [[cameras.fx, 0, W / 2], [0, cameras.fy, H / 2], [0, 0, 1]], dtype=means.dtype, device=dev
    )
    bg = torch.as_tensor(background, dtype=means.dtype, device=dev).reshape(1, 3).expand(V, 3)
    rgb, alpha, meta = rasterization(
        means,
        quats,
        scales * scale_modifier,
        opacities,
        colors,
        cameras.viewmats.to(dev, means.dtype),
        K[None].expand(V, 3, 3),
        W,
        H,
        near_plane=0.2,
        eps2d=low_pass,
        backgrounds=bg,
        render_mode="RGB+ED",
        packed=False,
    )
    m2d = meta["means2d"]
    if track_means2d and m2d.requires_grad:
        m2d.retain_grad()
    radii = meta["radii"]
    if radii.dim() == 3:
        radii = radii.max(-1).values
    image = rgb[..., :3].permute(0, 3, 1, 2)
    if clamp_output:
        image = image.clamp(0, 1)
    # gsplat's means2d are pixels; the densification threshold is in NDC (d pix / d ndc = W/2, H/2)
    return RenderOutput(
        image,
        alpha.permute(0, 3, 1, 2),
        rgb[..., 3:].permute(0, 3, 1, 2),
        m2d,
        radii.int(),
        0,
        grad_scale=(W / 2, H / 2),
    )
