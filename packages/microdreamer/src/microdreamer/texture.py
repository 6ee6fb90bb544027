"""UV-textured meshes: an xatlas atlas, a texture baked from the vertex colours, .obj (+ .mtl + .png) / .glb writers.

The release's textured export (DreamGaussian main.py ``save_model('geo+tex')``) unwraps the mesh with xatlas and
fills a 1024² albedo by back-projecting Gaussian renders; texels no view reached are filled from the nearest baked
texel within 32 texels. Here the texture is baked from the mesh's vertex colours (rasterised in UV space, colours
interpolated with the triangle's barycentrics, so rendering the textured mesh reproduces the vertex-coloured one)
and padded the same distance by repeated neighbour averaging, which keeps bilinear lookups at chart borders from
reading the empty background. Stage 2 then refines the texture itself (:func:`microdreamer.refine.refine_mesh_colors`).

Texture layout as the release's: texel (i, j) holds (u, v) = ((j + ½)/T, (i + ½)/T) (v runs down the image rows);
the .obj stores ``vt u 1−v`` (OBJ's v runs up), and the .glb gets the same image and flipped v through trimesh.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from microdreamer.mesh import Mesh
from microdreamer.mesh_render import Fragments, interpolate, raster_screen

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


def bake_texture(mesh: Mesh, size: int = RELEASED_TEXTURE_SIZE, *, padding: int = 32) -> TexturedMesh:
    """Unwrap ``mesh`` and bake its vertex colours into a ``size``² texture (background texels padded)."""
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
    tex = interpolate(colors, f, frags)[0].permute(1, 2, 0)
    mask = frags.mask.float()[None]
    tex = _pad(tex, mask, padding)
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
        tmp = png.with_name(png.name + ".tmp")
        img.save(tmp, format="PNG")
        tmp.replace(png)
        tmp = mtl.with_name(mtl.name + ".tmp")
        tmp.write_text(
            f"newmtl albedo\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nillum 1\nmap_Kd {png.name}\n", encoding="ascii"
        )
        tmp.replace(mtl)
        lines = ["# microdreamer textured mesh", f"mtllib {mtl.name}"]
        lines += [f"v {a:.6f} {b:.6f} {c:.6f}" for a, b, c in mesh.vertices]
        lines += [f"vt {a:.6f} {1 - b:.6f}" for a, b in mesh.uvs]
        lines.append("usemtl albedo")
        lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in mesh.faces + 1]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="ascii")
        tmp.replace(path)
        return [path, mtl, png]
    if suffix == ".glb":
        try:
            import trimesh
        except ImportError as exc:
            raise ImportError('.glb export needs trimesh: pip install "microdreamer[mesh]"') from exc
        uv = np.stack([mesh.uvs[:, 0], 1 - mesh.uvs[:, 1]], 1)  # trimesh takes OBJ-style uvs
        visual = trimesh.visual.TextureVisuals(uv=uv, image=img)
        tm = trimesh.Trimesh(mesh.vertices, mesh.faces, visual=visual, process=False)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(tm.export(file_type="glb"))
        tmp.replace(path)
        return [path]
    raise ValueError(f"a textured mesh is written as .obj or .glb, not {suffix!r}")


def to_tensors(mesh: TexturedMesh, device=None) -> tuple[torch.Tensor, ...]:
    """(vertices, faces, uvs, texture) as tensors, for :func:`microdreamer.mesh_render.render_mesh`."""
    return tuple(
        torch.from_numpy(np.asarray(a)).to(device)
        for a in (mesh.vertices.astype(np.float32), mesh.faces, mesh.uvs.astype(np.float32), mesh.texture)
    )
