"""Forward + backward time of the CPU rasteriser (1k Gaussians, 64² × 4 views) against a dense PyTorch baseline
(every pixel against every Gaussian, depth-sorted, cumprod transmittance), in one run.

    uv run python packages/microdreamer/benchmarks/bench_rasterizer.py [--threads 1] [--gaussians 1000]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from microdreamer.cameras import orbit_cameras
from microdreamer.gaussians import GaussianModel
from microdreamer.rasterizer import _project, quaternion_to_rotation, rasterize_gaussians


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gaussians", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--blob-of-n", type=int, default=5000)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    # the first 1k Gaussians of DreamGaussian's 5000-point initial blob (σ ≈ 0.03, what a run starts from);
    # --blob-of-n N uses an N-point blob instead (fewer points → larger Gaussians → more pixel pairs)
    full = GaussianModel.blob(max(a.blob_of_n, a.gaussians), generator=torch.Generator().manual_seed(0))
    m = GaussianModel(
        *(full.params[k][: a.gaussians] for k in ("xyz", "f_dc", "opacity", "scaling", "rotation"))
    )
    cams = orbit_cameras([0.0, -20.0, 10.0, 30.0], [0.0, 90.0, 180.0, 270.0], 2.0, size=a.size)

    def run(f):
        out = f(m.xyz, m.scales, m.quats, m.opacities, m.colors, cams)
        img = out.image if hasattr(out, "image") else out
        (img - 0.5).abs().sum().backward()
        for p in m.params.values():
            p.grad = None
        return img

    pairs = rasterize_gaussians(m.xyz, m.scales, m.quats, m.opacities, m.colors, cams).num_pairs
    fast = run(rasterize_gaussians).detach()
    ref = run(dense).detach()
    t_fast = timeit(lambda: run(rasterize_gaussians), a.reps)
    t_dense = timeit(lambda: run(dense), max(2, a.reps // 2))
    print(
        f"{a.gaussians} Gaussians, {a.size}² × 4 views, {a.threads} thread(s), {pairs} pixel pairs: fwd+bwd {t_fast * 1000:.0f} ms "
        f"(dense baseline {t_dense * 1000:.0f} ms, {t_dense / t_fast:.1f}× faster); max |Δ| vs dense {float((fast - ref.clamp(0, 1)).abs().max()):.1e}"
    )


if __name__ == "__main__":
    main()
