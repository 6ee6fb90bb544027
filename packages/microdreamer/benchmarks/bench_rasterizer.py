"""Forward + backward time of the CPU rasteriser (1k Gaussians, 64² × 4 views) against the 0.1.0 implementation
(kept below as the baseline: α-test bounding boxes, autograd through pair-sized gathers) and optionally a dense
PyTorch baseline (every pixel against every Gaussian), in one run, for two cases: DreamGaussian's initial Gaussian
size (the first 1k of a 5000-point blob) and 1k larger Gaussians (a 1000-point blob).

    uv run python packages/microdreamer/benchmarks/bench_rasterizer.py [--threads 1] [--gaussians 1000] [--dense]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch
from microdreamer.cameras import Cameras, orbit_cameras
from microdreamer.gaussians import GaussianModel
from microdreamer.rasterizer import (
    ALPHA_MAX,
    ALPHA_MIN,
    NEAR_Z,
    RenderOutput,
    _project,
    quaternion_to_rotation,
    rasterize_gaussians,
)


def dense(means, scales, quats, op, col, cams):
    R = quaternion_to_rotation(quats)
    M = R * scales[:, None, :]
    _, z, ndc, cov2 = _project(means, M @ M.transpose(-1, -2), cams, 0.3)
    V, H, W = len(cams), cams.height, cams.width
    a, b, c = cov2[..., 0, 0], cov2[..., 0, 1], cov2[..., 1, 1]
    det = a * c - b * b
    px = ((ndc[..., 0] + 1) * W - 1) / 2
    py = ((ndc[..., 1] + 1) * H - 1) / 2
    order = torch.argsort(z, dim=1)
    g = lambda t: torch.gather(t, 1, order)  # noqa: E731
    ys, xs = torch.meshgrid(
        torch.arange(H, dtype=means.dtype), torch.arange(W, dtype=means.dtype), indexing="ij"
    )
    dx = xs.reshape(1, -1, 1) - g(px)[:, None]
    dy = ys.reshape(1, -1, 1) - g(py)[:, None]
    det_s = g(det)[:, None]
    power = (
        -0.5 * (g(c)[:, None] * dx * dx + g(a)[:, None] * dy * dy) / det_s + g(b)[:, None] * dx * dy / det_s
    )
    alpha = torch.clamp(op[order][:, None] * torch.exp(power), max=0.99)
    alpha = alpha * (alpha >= 1 / 255) * (g(z) > 0.2)[:, None]
    T = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1 - alpha[..., :-1]], -1), -1)
    w = alpha * T
    img = torch.einsum("vpn,vnc->vpc", w, col[order]) + (1 - w.sum(-1, keepdim=True))
    return img.reshape(V, H, W, 3).permute(0, 3, 1, 2)


def timeit(fn, reps):
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def rasterize_v1(
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
    """The 0.1.0 rasteriser, kept as the baseline: box-bounded pairs, autograd through pair-sized gathers."""
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


def case(blob_of_n, a, cams):
    # the first `gaussians` of an N-point blob as DreamGaussian initialises it (5000 points: σ ≈ 0.03, what a run
    # starts from); fewer points → larger Gaussians → more pixel pairs
    full = GaussianModel.blob(max(blob_of_n, a.gaussians), generator=torch.Generator().manual_seed(0))
    m = GaussianModel(
        *(full.params[k][: a.gaussians] for k in ("xyz", "f_dc", "opacity", "scaling", "rotation"))
    )

    def run(f):
        out = f(m.xyz, m.scales, m.quats, m.opacities, m.colors, cams)
        img = out.image if hasattr(out, "image") else out
        (img - 0.5).abs().sum().backward()
        grads = torch.cat([p.grad.reshape(-1) for p in m.params.values()])
        for p in m.params.values():
            p.grad = None
        return img.detach(), grads

    pairs = rasterize_gaussians(m.xyz, m.scales, m.quats, m.opacities, m.colors, cams).num_pairs
    (new, g_new), (old, g_old) = run(rasterize_gaussians), run(rasterize_v1)
    t_new = timeit(lambda: run(rasterize_gaussians), a.reps)
    t_old = timeit(lambda: run(rasterize_v1), a.reps)
    rel_g = float((g_new - g_old).norm() / g_old.norm())
    line = (
        f"  blob of {blob_of_n}: {pairs} pixel pairs: fwd+bwd {t_new * 1000:.0f} ms, 0.1.0 rasteriser "
        f"{t_old * 1000:.0f} ms ({t_old / t_new:.1f}× faster); max |Δimage| {float((new - old).abs().max()):.1e}, "
        f"|Δgrad|/|grad| {rel_g:.1e}"
    )
    if a.dense:
        ref = run(dense)[0]
        t_dense = timeit(lambda: run(dense), 1)
        line += f"; dense baseline {t_dense * 1000:.0f} ms, max |Δ| {float((new - ref.clamp(0, 1)).abs().max()):.1e}"
    print(line, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gaussians", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--dense", action="store_true", help="also time the dense all-pairs baseline (slow)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cams = orbit_cameras([0.0, -20.0, 10.0, 30.0], [0.0, 90.0, 180.0, 270.0], 2.0, size=a.size)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{a.gaussians} Gaussians, {a.size}² × 4 views, {a.threads} thread(s), load average {load:.1f}, best of {a.reps}:"
    )
    for blob_of_n in (5000, a.gaussians):
        case(blob_of_n, a, cams)


if __name__ == "__main__":
    main()
