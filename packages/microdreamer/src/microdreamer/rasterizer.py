"""A differentiable 3D Gaussian splatting rasteriser in plain PyTorch (runs on the CPU).

It computes what the 3DGS CUDA rasteriser (Kerbl et al. 2023, used by DreamGaussian/MicroDreamer) computes, without
tiles: EWA projection of each 3D covariance (Zwicker et al. 2002: Σ' = J W Σ Wᵀ Jᵀ + 0.3 I, with 3DGS's 1.3·tan(fov)
clamp of the Jacobian's point), per-pixel alpha α = min(0.99, o·exp(−½ dᵀ Σ'⁻¹ d)) kept where α ≥ 1/255, and
front-to-back compositing in depth order, C = Σ_i c_i α_i Π_{j<i}(1 − α_j) + T·bg.

Vectorisation: the (Gaussian, pixel) candidates are the scanline spans of each Gaussian's exact α ≥ 1/255 ellipse,
q = dᵀΣ'⁻¹d ≤ 2·ln(255·o) (the opacity-aware cut-off; a faint Gaussian covers fewer pixels than a fixed 3σ), built
with two `repeat_interleave`s (rows, then pixels; no Python loop); α is evaluated on them and the α test keeps the
exact set. Kept pairs are laid out in (pixel, depth) order by one stable sort, and the per-pixel transmittance is
a segmented exclusive cumulative sum of log(1 − α) in float64 (a long global cumsum must not lose precision).

The compositing is a `torch.autograd.Function` with a hand-written backward (the 3DGS one: ∂L/∂α_i = s_i T_i −
S_i/(1 − α_i), where s_i is the output gradient dotted with the pair's features and S_i the sum of s_j w_j behind
it), reduced to per-Gaussian sums of the power's moments; autograd does the (Gaussian-sized) projection. All index
work is integer and gradient-free, so gradients are exact for the smooth part (what `gradcheck` checks).

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
SPAN_SLACK = 1e-3  # pixels added to each span so round-off never drops a pixel the α test would keep


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


def _spans(mx, my, a, b, c, q_max, width: int, height: int, view_base):
    """Scanline spans of the ellipses q ≤ q_max (per Gaussian-in-view k; all inputs detached, [K]).

    Rows |y − my| ≤ √(q_max Σ'_yy); in row y the ellipse covers x ∈ mx + (Σ'_xy/Σ'_yy)(y − my) ±
    √((q_max − (y − my)²/Σ'_yy) · det Σ' / Σ'_yy). Returns, per row r: its Gaussian k, its y, its first x, its pixel
    count and its first pixel's flat index.
    """
    K = mx.shape[0]
    ry = torch.sqrt(q_max * c)
    y0 = torch.ceil(my - ry - SPAN_SLACK).clamp(0, height)
    y1 = torch.floor(my + ry + SPAN_SLACK).clamp(-1, height - 1)
    n_rows = (y1 - y0 + 1).clamp(min=0).long()
    row_k = torch.repeat_interleave(torch.arange(K, device=mx.device), n_rows)
    first = torch.cumsum(n_rows, 0) - n_rows
    row_y = y0[row_k] + (torch.arange(row_k.shape[0], device=mx.device) - first[row_k]).to(mx.dtype)
    dy = row_y - my[row_k]
    cr = c[row_k]
    centre = mx[row_k] + b[row_k] / cr * dy
    half = torch.sqrt(torch.clamp(q_max[row_k] - dy * dy / cr, min=0) * (a * c - b * b)[row_k] / cr)
    x0 = torch.ceil(centre - half - SPAN_SLACK).clamp(0, width)
    x1 = torch.floor(centre + half + SPAN_SLACK).clamp(-1, width - 1)
    n = (x1 - x0 + 1).clamp(min=0).long()
    pix0 = view_base[row_k] + row_y.long() * width + x0.long()
    return row_k, row_y, x0, n, pix0


def _take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return values.index_select(0, index)  # several times faster than values[index] for 1-D gathers on the CPU


class _Composite(torch.autograd.Function):
    """α of every candidate pair, the α ≥ 1/255 test, (pixel, depth) order, front-to-back compositing.

    geo [K, 7] = (pixel x, pixel y, conic A, B, C of Σ'⁻¹ = [[A, B], [B, C]], opacity, camera z), col [K, 3], both
    for the visible Gaussian-in-view entries in (view, depth) order; rows from `_spans`. Returns [5, n_pix]: the
    colour sum (3), accumulated α, α-weighted depth (no background), and the number of kept pairs.
    """

    @staticmethod
    def forward(ctx, geo, col, row_k, row_y, row_x0, row_n, row_pix0, n_pix: int):
        dtype, device = geo.dtype, geo.device
        mx, my, A, B, C, o = (_take(v, row_k) for v in geo[:, :6].t().contiguous())  # per row
        total = int(row_n.sum())
        pair_row = torch.repeat_interleave(
            torch.arange(row_k.shape[0], device=device), row_n, output_size=total
        )
        local = torch.arange(total, device=device) - _take(torch.cumsum(row_n, 0) - row_n, pair_row)
        # per-row constants: power(dx) = c0 + dx·(c1 + dx·hA) = −½(A dx² + C dy²) − B dx dy
        r_dy = row_y - my
        dx = _take(row_x0 - mx, pair_row) + local.to(dtype)
        power = _take(-0.5 * C * r_dy * r_dy, pair_row) + dx * (
            _take(-B * r_dy, pair_row) + dx * _take(-0.5 * A, pair_row)
        )
        raw = _take(o, pair_row) * torch.exp(power)
        keep = (raw >= ALPHA_MIN).nonzero().squeeze(1)  # min(0.99, raw) ≥ 1/255 ⟺ raw ≥ 1/255
        ctx.empty = keep.numel() == 0  # candidates only within SPAN_SLACK of an ellipse: none kept
        if ctx.empty:
            ctx.save_for_backward(geo, col)
            n_kept = torch.tensor(0)
            ctx.mark_non_differentiable(n_kept)
            return torch.zeros(5, n_pix, dtype=dtype, device=device), n_kept
        pr = _take(pair_row, keep)
        pixel = _take(row_pix0, pr) + _take(local, keep)
        key = pixel.int() if n_pix < 2**31 else pixel
        key, srt = torch.sort(
            key, stable=True
        )  # pairs were generated in (view, depth) order: stable keeps it
        pixel, pr = key.long(), _take(pr, srt)
        raw, dx = _take(_take(raw, keep), srt), _take(_take(dx, keep), srt)
        k, dy = _take(row_k, pr), _take(r_dy, pr)
        alpha = raw.clamp(max=ALPHA_MAX)
        upix, counts = torch.unique_consecutive(pixel, return_counts=True)
        seg_first = torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts, output_size=pixel.shape[0]
        )
        log1m = torch.log1p(-alpha.double())
        excl = torch.cumsum(log1m, 0) - log1m
        trans = torch.exp(excl - _take(excl, seg_first)).to(dtype)
        w = alpha * trans
        feats = [_take(v, k) for v in torch.cat([col, geo[:, 6:7]], 1).t().contiguous()]  # r, g, b, z
        out = torch.zeros(5, n_pix, dtype=dtype, device=device)
        for ch, f in enumerate((feats[0] * w, feats[1] * w, feats[2] * w, w, feats[3] * w)):
            out[ch].index_copy_(0, upix, torch.segment_reduce(f, "sum", lengths=counts))
        ctx.save_for_backward(geo, k, pixel, dx, dy, alpha, raw, trans, w, counts, *feats)
        n_kept = torch.tensor(k.shape[0])
        ctx.mark_non_differentiable(n_kept)
        return out, n_kept

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gout, _g_kept):
        if ctx.empty:
            geo, col = ctx.saved_tensors
            return torch.zeros_like(geo), torch.zeros_like(col), None, None, None, None, None, None
        geo, k, pixel, dx, dy, alpha, raw, trans, w, counts, cr, cg, cb, z = ctx.saved_tensors
        K, dtype = geo.shape[0], geo.dtype
        g = [
            gout[ch].index_select(0, pixel) for ch in range(5)
        ]  # ∂L/∂(colour sum, acc, depth) at each pair's pixel
        s = g[0] * cr + g[1] * cg + g[2] * cb + g[3] + g[4] * z  # ∂L/∂w_i
        sw = (s * w).double()
        incl = torch.cumsum(sw, 0)
        seg_last = torch.repeat_interleave(torch.cumsum(counts, 0) - 1, counts, output_size=k.shape[0])
        behind = (_take(incl, seg_last) - incl).to(dtype)  # S_i = Σ_{j behind i} s_j w_j
        d_alpha = s * trans - behind / (1 - alpha)
        gp = torch.where(
            raw <= ALPHA_MAX, d_alpha * alpha, torch.zeros_like(alpha)
        )  # ∂L/∂power (clamp: none)

        def per_k(v):
            return torch.zeros(K, dtype=dtype, device=geo.device).index_add_(0, k, v)

        s_g, s_x, s_y = per_k(gp), per_k(gp * dx), per_k(gp * dy)
        s_xx, s_xy, s_yy = per_k(gp * dx * dx), per_k(gp * dx * dy), per_k(gp * dy * dy)
        A, B, C, o = geo[:, 2], geo[:, 3], geo[:, 4], geo[:, 5]
        d_geo = torch.stack(
            [
                A * s_x + B * s_y,  # dx = x − mx, ∂power/∂dx = −(A dx + B dy)
                C * s_y + B * s_x,
                -0.5 * s_xx,
                -s_xy,
                -0.5 * s_yy,
                s_g / o,  # ∂α/∂o = α/o where unclamped
                per_k(g[4] * w),
            ],
            dim=1,
        )
        d_col = torch.stack([per_k(g[0] * w), per_k(g[1] * w), per_k(g[2] * w)], dim=1)
        return d_geo, d_col, None, None, None, None, None, None


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
        # the opacity-aware cut-off: α ≥ 1/255 ⟺ q = dᵀΣ'⁻¹d ≤ 2 ln(255 o); its bounding box decides visibility
        q_max = 2.0 * torch.log(torch.clamp(op.detach() * 255.0, min=1.0))
        rx = torch.sqrt(q_max * a.clamp(min=0))
        ry = torch.sqrt(q_max * c.clamp(min=0))
        visible = (z > NEAR_Z) & (det > 0) & (q_max > 0)
        visible &= (torch.floor(pix_x + rx) >= 0) & (torch.ceil(pix_x - rx) <= W - 1)
        visible &= (torch.floor(pix_y + ry) >= 0) & (torch.ceil(pix_y - ry) <= H - 1)
        radii = torch.where(visible, radii3, torch.zeros_like(radii3)).to(torch.int32)
        # visible (view, gaussian) entries in (view, depth) order: the later stable sort by pixel keeps depth order
        vis_idx = visible.reshape(-1).nonzero().squeeze(1)
        view_of = torch.div(vis_idx, N, rounding_mode="floor")
        order = torch.argsort(z.reshape(-1)[vis_idx], stable=True)
        order = order[torch.argsort(view_of[order], stable=True)]
        g = vis_idx[order]  # flat (v·N + n) ids, sorted
        rows = _spans(
            pix_x.reshape(-1)[g],
            pix_y.reshape(-1)[g],
            a.reshape(-1)[g],
            b.reshape(-1)[g],
            c.reshape(-1)[g],
            q_max.reshape(-1)[g],
            W,
            H,
            torch.div(g, N, rounding_mode="floor") * (H * W),
        )
    if g.numel() == 0 or int(rows[3].sum()) == 0:
        zero = (means.sum() + scales.sum() + quats.sum() + opacities.sum() + colors.sum()) * 0
        image = bg.reshape(1, 3, 1, 1).expand(V, 3, H, W) + zero
        empty = torch.zeros(V, 1, H, W, dtype=dtype, device=device) + zero
        return RenderOutput(image, empty, empty, ndc, radii, 0)

    # Gaussian-sized gathers stay in autograd; the pair-sized work is in _Composite
    packed = torch.stack([pix_x, pix_y, c / det, -b / det, a / det, op, z], dim=-1).reshape(V * N, 7)
    geo = packed.index_select(0, g)
    col = colors.index_select(0, torch.remainder(g, N))
    out, n_kept = _Composite.apply(geo, col, *rows, V * H * W)
    acc = out[3]
    img = out[:3] + (1.0 - acc)[None] * bg[:, None]
    image = img.reshape(3, V, H, W).transpose(0, 1)
    if clamp_output:
        image = image.clamp(0, 1)
    return RenderOutput(
        image=image,
        alpha=acc.reshape(V, 1, H, W),
        depth=out[4].reshape(V, 1, H, W),
        means2d=ndc,
        radii=radii,
        num_pairs=int(n_kept),
    )
