"""UV-textured meshes: an xatlas atlas, a texture baked from renders or vertex colours, .obj (+ .mtl + .png) / .glb.

The release's textured export (DreamGaussian main.py ``save_model('geo+tex')``) unwraps the mesh with xatlas and
fills a 1024² albedo by back-projecting 26 Gaussian renders (8 azimuths × elevations 0, ±45°, plus top and bottom,
512² each): every mesh pixel whose view cosine exceeds 0.5 is splatted bilinearly into the texture at its UV, at the
full and coarser resolutions to close holes (``mipmap_linear_grid_put_2d``), and a texel keeps the first view that
reached it. :func:`bake_texture` does that when given a ``render`` function (e.g. the Gaussians'), with texel
centres placed as the lookup places them (the release's splat is off by half a texel) and the full resolution always
splatted (the release's loop skips it for textures ≤ 256²). Texels of the atlas no view reached take the vertex
colours (baked in UV space: barycentric interpolation, so the textured mesh then renders like the vertex-coloured
one); without ``render`` the whole texture is baked that way. The atlas is padded 32 texels by repeated neighbour
averaging (the release copies the nearest texel), so bilinear lookups at chart borders never read the background.
Stage 2 then refines the texture itself (:func:`microdreamer.refine.refine_mesh_colors`).

Texture layout as the release's: texel (i, j) holds (u, v) = ((j + ½)/T, (i + ½)/T) (v runs down the image rows);
the .obj stores ``vt u 1−v`` (OBJ's v runs up), and the .glb gets the same image and flipped v through trimesh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gen_common.atomic import atomic_path, atomic_write_text
from microdreamer.cameras import Cameras, orbit_cameras
from microdreamer.mesh import Mesh
from microdreamer.mesh_render import Fragments, interpolate, raster_screen, render_mesh

__all__ = ["TexturedMesh", "bake_texture", "save_textured_mesh", "to_tensors", "unwrap_uv"]

RELEASED_TEXTURE_SIZE = 1024


@dataclass
class TexturedMesh:
    vertices: np.ndarray  # [N, 3] float (vertices on UV seams are duplicated)
    faces: np.ndarray  # [F, 3] int
    uvs: np.ndarray  # [N, 2] float in [0, 1]
    texture: np.ndarray  # [T, T, 3] float in [0, 1]
    source: np.ndarray  # [N] int: the vertex of the untextured mesh each one copies

    def edges_manifold(self) -> bool:
        """Watertight in 3D (seams welded back through ``source``)."""
        return Mesh(self.vertices, self.source[self.faces], np.zeros_like(self.vertices)).edges_manifold()


def unwrap_uv(mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xatlas charts packed into [0, 1]²: (source vertex per new vertex [N'], faces [F, 3], uvs [N', 2])."""
    try:
        import xatlas
    except ImportError as exc:
        raise ImportError('a UV-textured mesh needs xatlas: pip install "microdreamer[texture]"') from exc
    vmap, faces, uvs = xatlas.parametrize(
        np.ascontiguousarray(mesh.vertices, dtype=np.float32),
        np.ascontiguousarray(mesh.faces, dtype=np.uint32),
    )
    return vmap.astype(np.int64), faces.astype(np.int64), uvs.astype(np.float32)


def _pad(texture: torch.Tensor, mask: torch.Tensor, iterations: int) -> torch.Tensor:
    """Grow the baked region by ``iterations`` texels, each new texel the mean of its baked 3×3 neighbours."""
    tex = texture.permute(2, 0, 1)[None] * mask
    m = mask.clone()
    for _ in range(iterations):
        s = F.avg_pool2d(tex, 3, 1, 1, count_include_pad=False)
        c = F.avg_pool2d(m, 3, 1, 1, count_include_pad=False)
        grow = (c > 0) & (m == 0)
        if not grow.any():
            break
        tex = torch.where(grow, s / c.clamp_min(1e-12), tex)
        m = torch.where(grow, torch.ones_like(m), m)
    return tex[0].permute(1, 2, 0)


# the release's back-projection views: (elevation, azimuth) in DreamGaussian's orbit convention
BAKE_VIEWS = [(e, a) for e in (0.0, -45.0, 45.0) for a in (0, 45, -45, 90, -90, 135, -135, 180)] + [
    (-89.9, 0.0),
    (89.9, 0.0),
]


def _splat(size: int, uv: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear splat of ``values`` [P, C] at ``uv`` [P, 2] into a size² grid of texel centres: (Σ w·value, Σ w)."""
    x, y = uv[:, 0] * size - 0.5, uv[:, 1] * size - 0.5
    x0 = x.floor().clamp(0, size - 2)
    y0 = y.floor().clamp(0, size - 2)
    fx, fy = (x - x0).clamp(0, 1), (y - y0).clamp(0, 1)
    acc = values.new_zeros(size * size, values.shape[1])
    cnt = values.new_zeros(size * size)
    for dx, dy, w in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        idx = (y0.long() + dy) * size + x0.long() + dx
        acc.index_add_(0, idx, values * w[:, None])
        cnt.index_add_(0, idx, w)
    return acc, cnt


def _splat_mip(size: int, uv: torch.Tensor, values: torch.Tensor, min_resolution: int = 256):
    """Splat at size², then at halved resolutions (upsampled) into the texels still empty, down to
    ``min_resolution`` (exclusive), as ``mipmap_linear_grid_put_2d``."""
    acc = values.new_zeros(size * size, values.shape[1])
    cnt = values.new_zeros(size * size)
    res = size
    while res == size or (res > min_resolution and res >= 2):
        empty = cnt == 0
        if not empty.any():
            break
        a, c = _splat(res, uv, values)
        if res != size:
            grid = torch.cat([a, c[:, None]], 1).T.reshape(1, -1, res, res)
            up = F.interpolate(grid, (size, size), mode="bilinear", align_corners=False)[0]
            a, c = up[:-1].reshape(values.shape[1], -1).T, up[-1].reshape(-1)
        acc[empty] += a[empty]
        cnt[empty] += c[empty]
        res //= 2
    return acc, cnt


def bake_texture(
    mesh: Mesh,
    size: int = RELEASED_TEXTURE_SIZE,
    *,
    render: Callable[[Cameras], torch.Tensor] | None = None,
    render_size: int = 512,
    radius: float = 2.0,
    fovy: float = 49.1,
    padding: int = 32,
    backend: str = "auto",
) -> TexturedMesh:
    """Unwrap ``mesh`` and bake a ``size``² texture: back-projected from ``render(cameras) → [V, 3, H, W]`` over the
    release's 26 views when given (e.g. ``lambda c: gaussians.render(c).image``), else from the vertex colours."""
    if size < 2:
        raise ValueError(f"texture size must be at least 2, got {size}")
    vmap, faces, uvs = unwrap_uv(mesh)
    u = torch.from_numpy(uvs).double()
    f = torch.from_numpy(faces)
    face, bary, _ = raster_screen(
        u[:, 0] * size - 0.5,
        u[:, 1] * size - 0.5,
        torch.ones(len(u), dtype=torch.float64),
        f,
        size,
        size,
        0.0,
    )
    frags = Fragments(
        face.reshape(1, size, size), bary.reshape(1, size, size, 3), bary.new_zeros(1, size, size)
    )
    colors = torch.from_numpy(np.asarray(mesh.colors, dtype=np.float32)[vmap])
    tex = interpolate(colors, f, frags)[0].permute(1, 2, 0)  # [T, T, 3] vertex colours in UV space
    atlas = frags.mask[0]
    if render is not None:
        verts = torch.from_numpy(np.asarray(mesh.vertices, dtype=np.float32)[vmap])
        uvt = torch.from_numpy(uvs)
        acc = torch.zeros(size * size, 3)
        cnt = torch.zeros(size * size)
        for el, az in BAKE_VIEWS:
            cam = orbit_cameras([el], [az], radius, size=render_size, fovy_deg=fovy)
            with torch.no_grad():
                rgb = render(cam)[0].float().cpu()
            out = render_mesh(verts, f, torch.zeros_like(verts), cam, normals=True, backend=backend)
            seen = (out.fragments.mask[0] & (out.viewcos[0, 0] > 0.5)).reshape(-1)
            uv_pix = interpolate(uvt, f, out.fragments)[0].reshape(2, -1).T[seen].clamp(0, 1)
            a, c = _splat_mip(size, uv_pix, rgb.reshape(3, -1).T[seen])
            first = cnt < 0.1  # a texel keeps the first view that reached it
            acc[first] += a[first]
            cnt[first] += c[first]
        hit = (cnt > 0) & atlas.reshape(-1)
        flat = tex.reshape(-1, 3).clone()
        flat[hit] = acc[hit] / cnt[hit, None]
        tex = flat.reshape(size, size, 3)
    tex = _pad(tex, atlas.float()[None, None], padding)
    return TexturedMesh(
        np.asarray(mesh.vertices, dtype=np.float32)[vmap], faces, uvs, tex.clamp(0, 1).numpy(), vmap
    )


def save_textured_mesh(mesh: TexturedMesh, path: str | Path) -> list[Path]:
    """.obj (+ ``<stem>.mtl`` and ``<stem>.png`` beside it) or .glb (trimesh, ``microdreamer[mesh]``); returns the
    files written (each written atomically)."""
    from PIL import Image

    path = Path(path)
    suffix = path.suffix.lower()
    img = Image.fromarray(np.round(np.clip(mesh.texture, 0, 1) * 255).astype(np.uint8), "RGB")
    if suffix == ".obj":
        png, mtl = path.with_suffix(".png"), path.with_suffix(".mtl")
        with atomic_path(png) as tmp:
            img.save(tmp, format="PNG")
        atomic_write_text(mtl, f"newmtl albedo\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nillum 1\nmap_Kd {png.name}\n")
        lines = ["# microdreamer textured mesh", f"mtllib {mtl.name}"]
        lines += [f"v {a:.6f} {b:.6f} {c:.6f}" for a, b, c in mesh.vertices]
        lines += [f"vt {a:.6f} {1 - b:.6f}" for a, b in mesh.uvs]
        lines.append("usemtl albedo")
        lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in mesh.faces + 1]
        atomic_write_text(path, "\n".join(lines) + "\n")
        return [path, mtl, png]
    if suffix == ".glb":
        try:
            import trimesh
        except ImportError as exc:
            raise ImportError('.glb export needs trimesh: pip install "microdreamer[mesh]"') from exc
        uv = np.stack([mesh.uvs[:, 0], 1 - mesh.uvs[:, 1]], 1)  # trimesh takes OBJ-style uvs
        visual = trimesh.visual.TextureVisuals(uv=uv, image=img)
        tm = trimesh.Trimesh(mesh.vertices, mesh.faces, visual=visual, process=False)
        with atomic_path(path) as tmp:
            tmp.write_bytes(tm.export(file_type="glb"))
        return [path]
    raise ValueError(f"a textured mesh is written as .obj or .glb, not {suffix!r}")


def to_tensors(mesh: TexturedMesh, device=None) -> tuple[torch.Tensor, ...]:
    """(vertices, faces, uvs, texture) as tensors, for :func:`microdreamer.mesh_render.render_mesh`."""
    return tuple(
        torch.from_numpy(np.asarray(a)).to(device)
        for a in (mesh.vertices.astype(np.float32), mesh.faces, mesh.uvs.astype(np.float32), mesh.texture)
    )
