"""Mesh side, in one run: marching cubes + decimation to the release's 5e4 faces, the torch mesh renderer against a
dense baseline (every pixel against every triangle), and stage-2 colour refinement on the exact toy denoiser.

    uv run python packages/microdreamer/benchmarks/bench_mesh.py [--resolution 512] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from microdreamer.cameras import orbit_cameras
from microdreamer.decimate import decimate_mesh
from microdreamer.gaussians import GaussianModel
from microdreamer.mesh import Mesh, extract_mesh
from microdreamer.mesh_render import rasterize_mesh, render_mesh
from microdreamer.refine import RefineConfig, mesh_heldout_error, refine_mesh_colors
from microdreamer.toy import HeldOut, toy_denoiser


def _edge(u, w, q, area):
    """The signed area of (u, w, q) over the triangle's: the barycentric of the vertex opposite edge u–w."""
    return (
        (u[:, 0] - q[..., 0]) * (w[:, 1] - q[..., 1]) - (w[:, 0] - q[..., 0]) * (u[:, 1] - q[..., 1])
    ) / area


def dense_render(v, f, c, cams):
    """Every pixel against every triangle (edge functions, perspective-correct z, argmin): the obvious baseline."""
    out = []
    tan = math.tan(cams.fovy / 2)
    H = W = cams.width
    ys, xs = torch.meshgrid(
        torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij"
    )
    q = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)[:, None]  # [P, 1, 2]
    for k in range(len(cams)):
        cam = v.double() @ cams.viewmats[k, :3, :3].double().T + cams.viewmats[k, :3, 3].double()
        p = torch.stack(
            [
                ((cam[:, 0] / cam[:, 2] / tan + 1) * W - 1) / 2,
                ((cam[:, 1] / cam[:, 2] / tan + 1) * H - 1) / 2,
            ],
            -1,
        )
        a, b, cc = p[f[:, 0]], p[f[:, 1]], p[f[:, 2]]
        area = (b[:, 0] - a[:, 0]) * (cc[:, 1] - a[:, 1]) - (cc[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])

        bary = torch.stack(
            [_edge(b, cc, q, area), _edge(cc, a, q, area), _edge(a, b, q, area)], -1
        )  # [P, F, 3]
        inside = (bary >= 0).all(-1)
        zf = cam[:, 2][f]
        z = 1 / (bary / zf).sum(-1)
        z = torch.where(inside, z, torch.full_like(z, math.inf))
        best = z.argmin(1)
        hit = torch.isfinite(z.gather(1, best[:, None]))[:, 0]
        w = bary[torch.arange(len(q)), best] / zf[best] * z.gather(1, best[:, None])
        col = (c[f[best]] * w[..., None].to(c)).sum(1)
        img = torch.where(hit[:, None], col, torch.ones_like(col))
        out.append(img.reshape(H, W, 3).permute(2, 0, 1))
    return torch.stack(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--resolution", type=int, default=512, help="marching-cubes grid (the release: 512)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    # 1. decimation: a single Gaussian's iso-sphere (analytic radius) and the toy scene
    sphere = GaussianModel.from_activated(
        torch.zeros(1, 3), torch.full((1, 3), 0.2), torch.tensor([[0.9, 0.2, 0.1]]), torch.tensor([0.9])
    )
    analytic = 0.2 * math.sqrt(2 * math.log(0.9 / 0.2))
    den = toy_denoiser()
    for name, model in (("sphere", sphere), ("toy scene", den.scene)):
        t0 = time.perf_counter()
        mesh = extract_mesh(model, threshold=0.2, resolution=args.resolution)
        t1 = time.perf_counter()
        dec = decimate_mesh(mesh, 50_000)
        t2 = time.perf_counter()
        line = (
            f"{name}: {args.resolution}³ marching cubes {len(mesh.faces)} faces in {t1 - t0:.1f} s; decimated to "
            f"{len(dec.faces)} faces in {t2 - t1:.2f} s, watertight {dec.edges_manifold()}"
        )
        if name == "sphere":
            r0 = np.linalg.norm(mesh.vertices, axis=1).mean()
            r1 = np.linalg.norm(dec.vertices, axis=1).mean()
            line += f"; mean radius {r0:.5f} → {r1:.5f} (analytic {analytic:.5f})"
        print(line)

    # 2. renderer vs the dense baseline (small, so the baseline fits), then at the release's size
    small = decimate_mesh(extract_mesh(den.scene, threshold=0.2, resolution=48), 2000)
    v, f, c = (torch.from_numpy(a) for a in (small.vertices, small.faces, small.colors))
    cams = orbit_cameras([0.0, 20.0], [0.0, 135.0], 2.0, size=64)
    t0 = time.perf_counter()
    ref = dense_render(v, f, c, cams)
    t_dense = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = render_mesh(v, f, c, cams).image
    t_fast = time.perf_counter() - t0
    print(
        f"renderer, {len(f)} faces, 2 × 64²: dense {t_dense * 1e3:.0f} ms, torch z-buffer {t_fast * 1e3:.0f} ms "
        f"({t_dense / t_fast:.0f}×); pixels that differ {(ref != got).any(1).float().mean():.4%}, "
        f"max |Δ| {(ref - got).abs().max():.1e}"
    )
    big = decimate_mesh(extract_mesh(den.scene, threshold=0.2, resolution=256), 50_000)
    v, f, c = (torch.from_numpy(a) for a in (big.vertices, big.faces, big.colors))
    cams = orbit_cameras([0.0] * 8, [45.0 * i for i in range(8)], 2.0, size=512)
    t0 = time.perf_counter()
    frags = rasterize_mesh(v, f, cams)
    t1 = time.perf_counter()
    cg = c.clone().requires_grad_(True)
    render_mesh(v, f, cg, cams, fragments=frags).image.sum().backward()
    t2 = time.perf_counter()
    print(
        f"renderer, {len(f)} faces, 8 × 512² (stage 2's batch): rasterise {t1 - t0:.2f} s, "
        f"colour render + backward {t2 - t1:.2f} s"
    )

    # 3. stage 2 on the exact toy: the released settings (8 views, 512², 30 steps, t = 181, CFG 2, lr 0.2)
    held = HeldOut(den, size=64)
    mesh = decimate_mesh(extract_mesh(den.scene, threshold=0.2, resolution=128), 50_000)

    def ev(m):
        return mesh_heldout_error(m, held.cameras, held.truth)

    for label, start in (
        ("marching-cubes colours", mesh),
        ("grey", Mesh(mesh.vertices, mesh.faces, np.full_like(mesh.colors, 0.5))),
    ):
        for size in (512, 64):
            res = refine_mesh_colors(start, den, RefineConfig(render_size=size), evaluate=ev)
            print(
                f"stage 2 from {label}, {len(mesh.faces)} faces, 8 × {size}², 30 steps: {res.seconds:.1f} s, "
                f"{res.nfe} network evaluations, held-out L1 {res.error_before:.4f} → {res.error_after:.4f}"
            )

    # 4. the release's textured variant: xatlas atlas + 1024² texture, stage 2 on the texture
    try:
        from microdreamer.texture import bake_texture
    except ImportError:
        return
    t0 = time.perf_counter()
    tm = bake_texture(mesh, 1024)
    print(
        f"texture: xatlas atlas + 1024² bake of the {len(mesh.faces)}-face mesh's vertex colours in "
        f"{time.perf_counter() - t0:.1f} s, held-out L1 {ev(tm):.4f}"
    )
    t0 = time.perf_counter()
    tr = bake_texture(mesh, 1024, render=lambda c: den.scene.render(c).image)
    print(
        f"texture back-projected from 26 Gaussian renders at 512² (as released) in {time.perf_counter() - t0:.1f} s, "
        f"held-out L1 {ev(tr):.4f}"
    )
    for size in (512, 64):
        res = refine_mesh_colors(tr, den, RefineConfig(render_size=size), evaluate=ev)
        print(
            f"stage 2 on the back-projected 1024² texture, 8 × {size}², 30 steps: {res.seconds:.1f} s, held-out L1 "
            f"{res.error_before:.4f} → {res.error_after:.4f}"
        )


if __name__ == "__main__":
    main()
