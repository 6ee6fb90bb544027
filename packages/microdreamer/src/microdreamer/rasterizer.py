"""A differentiable 3D Gaussian splatting rasteriser in plain PyTorch (runs on the CPU).

It computes what the 3DGS CUDA rasteriser (Kerbl et al. 2023, used by DreamGaussian/MicroDreamer) computes, without
tiles: EWA projection of each 3D covariance (Zwicker et al. 2002: Σ' = J W Σ Wᵀ Jᵀ + 0.3 I, with 3DGS's 1.3·tan(fov)
clamp of the Jacobian's point), per-pixel alpha α = min(0.99, o·exp(−½ dᵀ Σ'⁻¹ d)) kept where α ≥ 1/255, and
front-to-back compositing in depth order, C = Σ_i c_i α_i Π_{j<i}(1 − α_j) + T·bg.

Vectorisation: every (Gaussian, pixel) pair inside the exact α ≥ 1/255 ellipse's bounding box is materialised as one
row (the boxes are generated with `repeat_interleave`, no Python loop), pairs are laid out in (pixel, depth) order by
one stable sort, and the per-pixel transmittance is a segmented exclusive cumulative sum of log(1 − α) computed in
float64 (so a long global cumsum does not lose precision). Autograd does the backward pass; all index work is
integer and gradient-free, so gradients are exact for the smooth part (what `gradcheck` checks).

The screen-space means are returned in NDC (``means2d``), as the CUDA rasteriser's ``viewspace_points`` gradient is:
densification thresholds (0.01 in DreamGaussian) are in those units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from microdreamer.cameras import Cameras

__all__ = ["RenderOutput", "quaternion_to_rotation", "rasterize_gaussians"]

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
NEAR_Z = 0.2  # 3DGS's in_frustum test


@dataclass
class RenderOutput:
    image: torch.Tensor  # [V, 3, H, W]
    alpha: torch.Tensor  # [V, 1, H, W]
    depth: torch.Tensor  # [V, 1, H, W] (alpha-weighted camera z)
    means2d: torch.Tensor  # [V, N, 2] NDC screen-space means (grad retained when requested)
    radii: torch.Tensor  # [V, N] 3σ screen radius in pixels (0 = not visible), as 3DGS reports it
    num_pairs: int = 0
    grad_scale: tuple[float, float] = (1.0, 1.0)  # multiplies means2d.grad into NDC units (gsplat: pixels)


def quaternion_to_rotation(q: torch.Tensor) -> torch.Tensor:
    """[N, 4] (w, x, y, z), normalised here → [N, 3, 3] rotation matrices."""
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(-1, 3, 3)


def _project(means, cov3d, cameras: Cameras, low_pass: float):
    """EWA projection for all views at once: camera-space means, NDC means, pixel means, 2D covariances."""
    V = len(cameras)
    vm = cameras.viewmats.to(means)
    Rw, tw = vm[:, :3, :3], vm[:, :3, 3]
    cam = torch.einsum("vij,nj->vni", Rw, means) + tw[:, None, :]  # [V, N, 3]
    z = cam[..., 2]
    zs = torch.where(z > NEAR_Z, z, torch.ones_like(z))  # invisible ones get a harmless denominator
    tan_y = math.tan(cameras.fovy / 2)
    tan_x = tan_y * cameras.width / cameras.height
    fx, fy = cameras.fx, cameras.fy
    ndc = torch.stack([cam[..., 0] / zs / tan_x, cam[..., 1] / zs / tan_y], dim=-1)  # [V, N, 2]
    # the Jacobian is evaluated at a point clamped to 1.3× the frustum, as 3DGS does (stability off-screen)
    tx = (cam[..., 0] / zs).clamp(-1.3 * tan_x, 1.3 * tan_x) * zs
    ty = (cam[..., 1] / zs).clamp(-1.3 * tan_y, 1.3 * tan_y) * zs
    zero = torch.zeros_like(zs)
    J = torch.stack([fx / zs, zero, -fx * tx / zs**2, zero, fy / zs, -fy * ty / zs**2], dim=-1).reshape(
        V, -1, 2, 3
    )
    T = J @ Rw[:, None]  # [V, N, 2, 3]
    cov2 = T @ cov3d[None] @ T.transpose(-1, -2)
    eye = torch.eye(2, dtype=means.dtype, device=means.device)
    cov2 = cov2 + low_pass * eye
    return cam, z, ndc, cov2


def rasterize_gaussians(
    means: torch.Tensor,
    scales: torch.Tensor,
    quats: torch.Tensor,
    opacities: torch.Tensor,
    colors: torch.Tensor,
    cameras: Cameras,
    *,
    background: torch.Tensor | tuple[float, float, float] = (1.0, 1.0, 1.0),
    scale_modifier: float = 1.0,
    low_pass: float = 0.3,
    clamp_output: bool = True,
    track_means2d: bool = False,
) -> RenderOutput:
    """Render N Gaussians (means [N,3], scales [N,3] (activated), quats [N,4], opacities [N] in (0,1),
    colors [N,3]) into V views. Differentiable w.r.t. every float input."""
    dtype, device = means.dtype, means.device
    N, V, H, W = means.shape[0], len(cameras), cameras.height, cameras.width
    bg = torch.as_tensor(background, dtype=dtype, device=device).reshape(3)
    R = quaternion_to_rotation(quats)
    M = R * (scales * scale_modifier)[:, None, :]
    cov3d = M @ M.transpose(-1, -2)
    _cam, z, ndc, cov2 = _project(means, cov3d, cameras, low_pass)
    if track_means2d:
        ndc.retain_grad()
    a, b, c = cov2[..., 0, 0], cov2[..., 0, 1], cov2[..., 1, 1]
    det = a * c - b * b
    pix_x = ((ndc[..., 0] + 1) * W - 1) * 0.5
    pix_y = ((ndc[..., 1] + 1) * H - 1) * 0.5
    op = opacities.reshape(1, N).expand(V, N)

    with torch.no_grad():
        mid = 0.5 * (a + c)
        lam = mid + torch.sqrt(torch.clamp(mid * mid - det, min=0.1))
        radii3 = torch.ceil(3.0 * torch.sqrt(lam))
        # exact support of α ≥ 1/255: −½ dᵀΣ'⁻¹d ≥ ln(1/(255·o)); the ellipse's bounding box has half-widths
        # √(2 ln(255 o) Σ'_xx) and √(2 ln(255 o) Σ'_yy)
        ln_ratio = torch.log(torch.clamp(op.detach() * 255.0, min=1.0))
        rx = torch.sqrt(2.0 * ln_ratio * a.clamp(min=0))
        ry = torch.sqrt(2.0 * ln_ratio * c.clamp(min=0))
        visible = (z > NEAR_Z) & (det > 0) & (ln_ratio > 0)
        x0 = torch.ceil(pix_x - rx).clamp(0, W)
        x1 = torch.floor(pix_x + rx).clamp(-1, W - 1)
        y0 = torch.ceil(pix_y - ry).clamp(0, H)
        y1 = torch.floor(pix_y + ry).clamp(-1, H - 1)
        bw = (x1 - x0 + 1).clamp(min=0)
        bh = (y1 - y0 + 1).clamp(min=0)
        visible &= (bw > 0) & (bh > 0)
        radii = torch.where(visible, radii3, torch.zeros_like(radii3)).to(torch.int32)
        # visible (view, gaussian) entries in (view, depth) order: the later stable sort by pixel keeps depth order
        vis_idx = visible.reshape(-1).nonzero().squeeze(1)
        view_of = torch.div(vis_idx, N, rounding_mode="floor")
        order = torch.argsort(z.reshape(-1)[vis_idx].detach(), stable=True)
        order = order[torch.argsort(view_of[order], stable=True)]
        g = vis_idx[order]  # flat (v·N + n) ids, sorted
        counts = (bw.reshape(-1)[g] * bh.reshape(-1)[g]).long()
        total = int(counts.sum())
    if total == 0:
        zero = (means.sum() + scales.sum() + quats.sum() + opacities.sum() + colors.sum()) * 0
        image = bg.reshape(1, 3, 1, 1).expand(V, 3, H, W) + zero
        empty = torch.zeros(V, 1, H, W, dtype=dtype, device=device) + zero
        return RenderOutput(image, empty, empty, ndc, radii, 0)

    with torch.no_grad():
        pair_g = torch.repeat_interleave(g, counts)
        starts = torch.cumsum(counts, 0) - counts
        local = torch.arange(total, device=device) - torch.repeat_interleave(starts, counts)
        gw = bw.reshape(-1)[pair_g].long()
        px = x0.reshape(-1)[pair_g].long() + local % gw
        py = y0.reshape(-1)[pair_g].long() + torch.div(local, gw, rounding_mode="floor")
        pair_v = torch.div(pair_g, N, rounding_mode="floor")
        pixel = pair_v * (H * W) + py * W + px
        srt = torch.argsort(pixel, stable=True)
        pair_g, pixel, px, py = pair_g[srt], pixel[srt], px[srt], py[srt]

    # the differentiable part: α per pair. One packed gather (and one index_add in backward) instead of six.
    packed = torch.stack([pix_x, pix_y, c / det, -b / det, a / det, op, z], dim=-1).reshape(V * N, 7)
    pg = packed.index_select(0, pair_g)
    dx = px.to(dtype) - pg[:, 0]
    dy = py.to(dtype) - pg[:, 1]
    power = -0.5 * (pg[:, 2] * dx * dx + pg[:, 4] * dy * dy) - pg[:, 3] * dx * dy
    alpha = torch.clamp(pg[:, 5] * torch.exp(power), max=ALPHA_MAX)
    with torch.no_grad():
        keep = (alpha >= ALPHA_MIN).nonzero().squeeze(1)
    alpha, pair_g, pixel, pz = alpha[keep], pair_g[keep], pixel[keep], pg[keep, 6]

    # segmented exclusive cumsum of log(1 − α) per pixel (pairs are contiguous per pixel, in depth order)
    log1m = torch.log1p(-alpha.double())
    incl = torch.cumsum(log1m, 0)
    excl = incl - log1m
    with torch.no_grad():
        _, seg_counts = torch.unique_consecutive(pixel, return_counts=True)
        seg_start = torch.repeat_interleave(torch.cumsum(seg_counts, 0) - seg_counts, seg_counts)
    trans = torch.exp(excl - excl[seg_start]).to(dtype)
    w = alpha * trans

    n_pix = V * H * W
    n_gauss = torch.remainder(pair_g, N)
    col = colors[n_gauss] * w[:, None]
    img = torch.zeros(n_pix, 3, dtype=dtype, device=device).index_add(0, pixel, col)
    acc = torch.zeros(n_pix, dtype=dtype, device=device).index_add(0, pixel, w)
    dep = torch.zeros(n_pix, dtype=dtype, device=device).index_add(0, pixel, w * pz)
    img = img + (1.0 - acc)[:, None] * bg
    image = img.reshape(V, H, W, 3).permute(0, 3, 1, 2)
    if clamp_output:
        image = image.clamp(0, 1)
    return RenderOutput(
        image=image,
        alpha=acc.reshape(V, 1, H, W),
        depth=dep.reshape(V, 1, H, W),
        means2d=ndc,
        radii=radii,
        num_pairs=int(alpha.shape[0]),
    )
