"""The release's post-processing before export (gs_postprocess.py filter_out): delete large over-white Gaussians
(any scale > 0.01 and SH-DC colour > 1 in every channel: white background leaking into the object) that visibly
contribute alpha, checked from 6 orbit views. Per view: render alpha with and without all candidates; a candidate
whose projected centre pixel loses more than 0.1 alpha is deleted."""

from __future__ import annotations

import torch

from microdreamer.cameras import orbit_cameras
from microdreamer.gaussians import SH_C0, GaussianModel

__all__ = ["VIEWS", "filter_white_gaussians"]

VIEWS = [
    (0.0, 0.0),
    (0.0, 180.0),
    (0.0, 90.0),
    (20.0, 180.0),
    (20.0, 90.0),
    (0.0, -90.0),
]  # (elevation, azimuth)


@torch.no_grad()
def filter_white_gaussians(
    model: GaussianModel, *, size: int = 512, radius: float = 2.0, fovy_deg: float = 49.0
) -> int:
    """Delete contributing over-white Gaussians in place; returns how many were deleted."""
    removed = 0
    for el, az in VIEWS:
        rgb = SH_C0 * model.params["f_dc"].detach() + 0.5
        cand = (model.scales > 0.01).any(1) & (rgb > 1.0).all(1)
        if not cand.any():
            break
        cams = orbit_cameras([el], [az], radius, size=size, fovy_deg=fovy_deg).to(model.xyz.device)
        before = model.render(cams, background=(1.0, 0.0, 0.0))
        keep = ~cand
        after = GaussianModel(*(model.params[k].detach()[keep] for k in GaussianModel.names)).render(
            cams, background=(1.0, 0.0, 0.0)
        )
        drop = (before.alpha - after.alpha)[0, 0] > 0.1
        ndc = before.means2d[0].detach()
        px = (((ndc[:, 0] + 1) * size - 1) / 2).round().long().clamp(0, size - 1)
        py = (((ndc[:, 1] + 1) * size - 1) / 2).round().long().clamp(0, size - 1)
        hit = cand & drop[py, px]
        if hit.any():
            model._prune_mask(hit)
            removed += int(hit.sum())
    return removed
