"""Mesh export on the CPU: Gaussian density grid → marching cubes → cleaned mesh with vertex colours → .obj/.ply/.glb.

The density is DreamGaussian's ``extract_fields``: d(x) = Σ_i o_i exp(−½ (x − μ_i)ᵀ Σ_i⁻¹ (x − μ_i)) over Gaussians with
opacity > 0.005 (unnormalised kernels, so the threshold does not depend on the scene's scale). Each Gaussian is
splatted only onto the voxels of its 3σ box (one vectorised pass, no per-Gaussian loop). The grid is padded with
empty voxels so every iso-surface is closed; vertex colours are the density-weighted mean of the nearest Gaussians'
colours at the vertex. (The release fits a NeRF + UV texture with CUDA-only tools; this is the CPU path.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gen_common.atomic import atomic_path
from microdreamer.gaussians import GaussianModel
from microdreamer.rasterizer import quaternion_to_rotation

__all__ = ["Mesh", "density_grid", "extract_mesh", "save_mesh"]


@dataclass
class Mesh:
    vertices: np.ndarray  # [V, 3] float
    faces: np.ndarray  # [F, 3] int
    colors: np.ndarray  # [V, 3] float in [0, 1]

    def edges_manifold(self) -> bool:
        """Watertight: every undirected edge is shared by exactly two faces."""
        e = np.sort(self.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        _, counts = np.unique(e, axis=0, return_counts=True)
        return bool(len(counts)) and bool((counts == 2).all())


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().float().cpu()


@torch.no_grad()
def density_grid(
    model: GaussianModel, resolution: int = 128, *, min_opacity: float = 0.005, chunk: int = 4_000_000
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Density on a resolution³ grid over the Gaussians' 3σ bounds, computed on the CPU whatever the model's device
    (marching cubes reads it there). Returns (grid, origin [3], voxel size)."""
    op = _cpu(model.opacities)
    keep = op > min_opacity
    mu = _cpu(model.xyz)[keep]
    if mu.shape[0] == 0:
        raise ValueError(f"no Gaussian has opacity above {min_opacity}: nothing to export")
    sc = _cpu(model.scales)[keep]
    R = quaternion_to_rotation(_cpu(model.quats)[keep])
    M = R * sc[:, None, :]
    cov_inv = torch.linalg.inv(M @ M.transpose(-1, -2) + 1e-12 * torch.eye(3))
    op = op[keep]
    ext = 3.0 * sc.max(dim=1).values
    lo = (mu - ext[:, None]).min(0).values
    hi = (mu + ext[:, None]).max(0).values
    voxel = float((hi - lo).max()) / (resolution - 1)
    origin = lo
    grid = torch.zeros(resolution**3)
    # each Gaussian's voxel box
    b0 = torch.clamp(torch.ceil((mu - ext[:, None] - origin) / voxel), 0, resolution - 1).long()
    b1 = torch.clamp(torch.floor((mu + ext[:, None] - origin) / voxel), 0, resolution - 1).long()
    size = (b1 - b0 + 1).clamp(min=0)
    vol = size.prod(1)
    # chunks of at most ``chunk`` (Gaussian, voxel) pairs over the concatenation of all boxes, so one Gaussian
    # whose box is the whole grid (a 512³ sphere) is split too and memory stays bounded
    cum = torch.cumsum(vol, 0)
    starts = cum - vol
    total = int(cum[-1])
    for a in range(0, total, chunk):
        pair = torch.arange(a, min(a + chunk, total))
        g = torch.searchsorted(cum, pair, right=True)
        local = pair - starts[g]
        sx, sy = size[g, 0], size[g, 1]
        ix = b0[g, 0] + local % sx
        iy = b0[g, 1] + (local // sx) % sy
        iz = b0[g, 2] + local // (sx * sy)
        pts = origin + torch.stack([ix, iy, iz], -1).float() * voxel
        d = pts - mu[g]
        power = -0.5 * torch.einsum("pi,pij,pj->p", d, cov_inv[g], d)
        val = op[g] * torch.exp(power)
        grid.index_add_(0, (ix * resolution + iy) * resolution + iz, val)
    return grid.reshape(resolution, resolution, resolution), origin, voxel


@torch.no_grad()
def _vertex_colors(model: GaussianModel, verts: torch.Tensor, k: int = 8, chunk: int = 8192) -> torch.Tensor:
    mu, col, op = _cpu(model.xyz), _cpu(model.colors), _cpu(model.opacities)
    inv_s2 = 1.0 / _cpu(model.scales).pow(2).mean(1)
    out = []
    k = min(k, mu.shape[0])
    for s in range(0, verts.shape[0], chunk):
        d2 = torch.cdist(verts[s : s + chunk], mu).pow(2)
        w = op[None] * torch.exp(-0.5 * d2 * inv_s2[None])
        top = w.topk(k, dim=1)
        wn = top.values / top.values.sum(1, keepdim=True).clamp_min(1e-30)
        out.append((wn[..., None] * col[top.indices]).sum(1))
    return torch.cat(out).clamp(0, 1)


def extract_mesh(model: GaussianModel, *, threshold: float = 0.2, resolution: int = 128) -> Mesh:
    """Marching cubes (Lorensen & Cline 1987, scikit-image) of the density at ``threshold``.

    Raises ValueError (one line) when no voxel reaches the threshold."""
    from skimage.measure import marching_cubes

    bound = float(_cpu(model.opacities).sum())  # the density can nowhere exceed Σ o_i
    if bound < threshold:
        raise ValueError(
            f"no Gaussian density reaches the threshold {threshold:g} (at most {bound:.3g} here); lower the threshold"
        )
    grid, origin, voxel = density_grid(model, resolution)
    peak = float(grid.max())
    if peak < threshold:
        raise ValueError(
            f"no Gaussian density reaches the threshold {threshold:g} (the peak is {peak:.3g}); lower the threshold"
        )
    padded = np.pad(grid.numpy(), 1)  # empty border: every surface closes
    verts, faces, _, _ = marching_cubes(padded, level=threshold, allow_degenerate=False)
    verts = (verts - 1.0) * voxel + origin.numpy()
    # scikit-image winds the faces of a density (high inside) clockwise seen from outside: reverse them so the
    # right-hand normals point outwards, as viewers with back-face culling and the shading's view-cosine expect
    faces = faces[:, ::-1].astype(np.int64)
    # clean: drop unreferenced vertices and faces that repeat a vertex
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    used, inverse = np.unique(faces.reshape(-1), return_inverse=True)
    verts, faces = verts[used], inverse.reshape(-1, 3)
    colors = _vertex_colors(model, torch.from_numpy(verts).float()).numpy()
    return Mesh(verts.astype(np.float32), faces, colors.astype(np.float32))


def save_mesh(mesh: Mesh, path: str | Path) -> Path:
    """Write .obj (with per-vertex colours after the position), .ply (binary, uchar colours) or .glb (trimesh)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".obj":
        v = np.concatenate([mesh.vertices, mesh.colors], 1)
        lines = ["# microdreamer mesh: v x y z r g b"]
        lines += [f"v {a:.6f} {b:.6f} {c:.6f} {r:.4f} {g:.4f} {bb:.4f}" for a, b, c, r, g, bb in v]
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in mesh.faces]
        data = ("\n".join(lines) + "\n").encode("ascii")
    elif suffix == ".ply":
        nv, nf = len(mesh.vertices), len(mesh.faces)
        header = (
            "ply\nformat binary_little_endian 1.0\n"
            f"element vertex {nv}\nproperty float x\nproperty float y\nproperty float z\n"
            "property uchar red\nproperty uchar green\nproperty uchar blue\n"
            f"element face {nf}\nproperty list uchar int vertex_indices\nend_header\n"
        )
        vdt = np.dtype([("p", "<f4", 3), ("c", "u1", 3)])
        va = np.empty(nv, dtype=vdt)
        va["p"] = mesh.vertices
        va["c"] = np.round(mesh.colors * 255).astype(np.uint8)
        fdt = np.dtype([("n", "u1"), ("i", "<i4", 3)])
        fa = np.empty(nf, dtype=fdt)
        fa["n"] = 3
        fa["i"] = mesh.faces
        data = header.encode("ascii") + va.tobytes() + fa.tobytes()
    elif suffix == ".glb":
        try:
            import trimesh
        except ImportError as exc:
            raise ImportError('.glb export needs trimesh: pip install "microdreamer[mesh]"') from exc
        tm = trimesh.Trimesh(
            mesh.vertices,
            mesh.faces,
            vertex_colors=np.round(mesh.colors * 255).astype(np.uint8),
            process=False,
        )
        data = tm.export(file_type="glb")
    else:
        raise ValueError(f"unknown mesh format {suffix!r}: use .obj, .ply or .glb")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path
