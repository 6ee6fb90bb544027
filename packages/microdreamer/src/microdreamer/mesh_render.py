"""A triangle-mesh renderer in plain PyTorch (z-buffer rasterisation, runs on the CPU), nvdiffrast when present.

Stage 2 of DreamGaussian/MicroDreamer renders the exported mesh with nvdiffrast (CUDA) and refines its colours. This
module computes what that renderer's ``rasterize`` + ``interpolate`` compute, in the package's camera convention
(:mod:`microdreamer.cameras`, the Gaussian rasteriser's pixel grid: pixel (i, j) samples NDC ((2i + 1)/W − 1,
(2j + 1)/H − 1), OpenCV axes, y down):

- rasterise (no gradient; the geometry is fixed in stage 2, as the release's ``train_geo: False``): every
  (triangle, pixel) pair inside a triangle's screen bounding box is one row (generated with ``repeat_interleave``,
  no Python loop over triangles); edge functions give screen-space barycentrics b, kept where all b ≥ 0 (pixels on a
  shared edge go to both triangles, so a closed mesh has no cracks); perspective-correct barycentrics
  b̃_k = (b_k / z_k) / Σ_j b_j / z_j and depth z = 1 / Σ_j b_j / z_j; the z-buffer keeps the nearest pair per pixel
  (ties to the lower triangle index). Triangles with a vertex closer than the camera's near plane are dropped.
- interpolate (differentiable w.r.t. the vertex attributes): a(p) = Σ_k b̃_k a_{f(p),k}, as nvdiffrast's
  ``interpolate``; the image is a·colour + (1 − a)·background with a = coverage.

Where ``nvdiffrast`` imports and the tensors are on CUDA, ``backend="auto"`` rasterises with it (its clip space is
built from the same cameras, so both backends produce the same fragments; a ``gpu`` test checks it). No
anti-aliasing is applied by either backend (the release's ``dr.antialias`` only smooths silhouette edges).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from microdreamer.cameras import Cameras

__all__ = [
    "Fragments",
    "MeshRenderOutput",
    "face_lod",
    "interpolate",
    "nvdiffrast_available",
    "raster_screen",
    "rasterize_mesh",
    "render_mesh",
    "sample_texture",
    "vertex_normals",
]


@dataclass
class Fragments:
    """The visible surface per pixel: ``face`` [V, H, W] (−1 = background), perspective-correct ``bary`` [V, H, W, 3],
    camera-space ``depth`` [V, H, W] (0 on background)."""

    face: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        return self.face >= 0


@dataclass
class MeshRenderOutput:
    image: torch.Tensor  # [V, 3, H, W]
    alpha: torch.Tensor  # [V, 1, H, W] coverage (0 or 1)
    depth: torch.Tensor  # [V, 1, H, W] camera z (0 on background)
    viewcos: torch.Tensor | None  # [V, 1, H, W] normal · direction to the camera (None unless asked)
    fragments: Fragments


def _nvdiffrast():
    # nvdiffrast is not on the package index (users build it from NVlabs' source), so no extra can declare it: it is
    # looked up by name at run time
    return importlib.import_module("nvdiffrast.torch")


def nvdiffrast_available() -> bool:
    try:
        _nvdiffrast()
    except Exception:  # ImportError, or a CUDA-extension build failure at import
        return False
    return torch.cuda.is_available()


def _camera_space(vertices: torch.Tensor, cameras: Cameras) -> torch.Tensor:
    vm = cameras.viewmats.to(vertices)
    return torch.einsum("vij,nj->vni", vm[:, :3, :3], vertices) + vm[:, None, :3, 3]  # [V, N, 3]


@torch.no_grad()
def raster_screen(
    px: torch.Tensor,
    py: torch.Tensor,
    z: torch.Tensor,
    faces: torch.Tensor,
    height: int,
    width: int,
    near: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Z-buffer rasterisation of triangles given per-vertex pixel coordinates (pixel (i, j) samples (x, y) = (j, i))
    and camera depths z: per pixel the nearest triangle (−1: none), its perspective-correct barycentrics and depth,
    flattened to [H·W]. With z ≡ 1 it is an affine rasteriser (UV-space baking)."""
    H, W = height, width
    device = px.device
    face_out = torch.full((H * W,), -1, dtype=torch.long, device=device)
    bary_out = torch.zeros(H * W, 3, dtype=torch.float64, device=device)
    depth_out = torch.zeros(H * W, dtype=torch.float64, device=device)
    tx, ty, tz = px[faces], py[faces], z[faces]  # [F, 3]
    area = (tx[:, 1] - tx[:, 0]) * (ty[:, 2] - ty[:, 0]) - (tx[:, 2] - tx[:, 0]) * (ty[:, 1] - ty[:, 0])
    ok = (tz > near).all(1) & (area.abs() > 1e-12)
    x0 = torch.ceil(tx.min(1).values).clamp(0, W)
    x1 = torch.floor(tx.max(1).values).clamp(-1, W - 1)
    y0 = torch.ceil(ty.min(1).values).clamp(0, H)
    y1 = torch.floor(ty.max(1).values).clamp(-1, H - 1)
    bw = (x1 - x0 + 1).clamp(min=0).long()
    bh = (y1 - y0 + 1).clamp(min=0).long()
    ok &= (bw > 0) & (bh > 0)
    fid = ok.nonzero().squeeze(1)
    counts = bw[fid] * bh[fid]
    total = int(counts.sum())
    if total == 0:
        return face_out, bary_out, depth_out
    pf = torch.repeat_interleave(fid, counts)
    local = torch.arange(total, device=device) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    qx = x0[pf] + (local % bw[pf]).to(px.dtype)
    qy = y0[pf] + torch.div(local, bw[pf], rounding_mode="floor").to(px.dtype)
    txf, tyf = tx[pf], ty[pf]
    # edge functions: b_k = signed area of the sub-triangle opposite vertex k / the triangle's signed area
    b0 = ((txf[:, 1] - qx) * (tyf[:, 2] - qy) - (txf[:, 2] - qx) * (tyf[:, 1] - qy)) / area[pf]
    b1 = ((txf[:, 2] - qx) * (tyf[:, 0] - qy) - (txf[:, 0] - qx) * (tyf[:, 2] - qy)) / area[pf]
    b2 = ((txf[:, 0] - qx) * (tyf[:, 1] - qy) - (txf[:, 1] - qx) * (tyf[:, 0] - qy)) / area[pf]
    inside = (b0 >= 0) & (b1 >= 0) & (b2 >= 0)
    b = torch.stack([b0, b1, b2], 1)[inside]
    pf, qx, qy = pf[inside], qx[inside], qy[inside]
    if pf.numel() == 0:
        return face_out, bary_out, depth_out
    q = b / tz[pf]
    s = q.sum(1)
    zp = 1.0 / s
    pix = qy.long() * W + qx.long()
    zmin = torch.full((H * W,), math.inf, dtype=zp.dtype, device=device).scatter_reduce(0, pix, zp, "amin")
    win = zp <= zmin[pix]
    fmin = torch.full((H * W,), faces.shape[0], dtype=torch.long, device=device).scatter_reduce(
        0, pix[win], pf[win], "amin"
    )
    sel = win & (pf == fmin[pix])
    face_out[pix[sel]] = pf[sel]
    bary_out[pix[sel]] = (q[sel] / s[sel, None]).double()
    depth_out[pix[sel]] = zp[sel].double()
    return face_out, bary_out, depth_out


@torch.no_grad()
def _rasterize_torch(vertices: torch.Tensor, faces: torch.Tensor, cameras: Cameras) -> Fragments:
    V, H, W = len(cameras), cameras.height, cameras.width
    cam = _camera_space(vertices.double(), cameras)  # index work in float64: edge tests stay exact enough
    tan_y = math.tan(cameras.fovy / 2)
    tan_x = tan_y * W / H
    out = []
    for v in range(V):
        z = cam[v, :, 2]
        zs = torch.where(z > cameras.near, z, torch.ones_like(z))
        px = ((cam[v, :, 0] / zs / tan_x + 1) * W - 1) * 0.5
        py = ((cam[v, :, 1] / zs / tan_y + 1) * H - 1) * 0.5
        out.append(raster_screen(px, py, z, faces, H, W, cameras.near))
    face, bary, depth = (torch.stack(t) for t in zip(*out))
    dt = vertices.dtype
    return Fragments(face.reshape(V, H, W), bary.to(dt).reshape(V, H, W, 3), depth.to(dt).reshape(V, H, W))


_NVDR_CONTEXTS: dict = {}


@torch.no_grad()
def _rasterize_nvdiffrast(
    vertices: torch.Tensor, faces: torch.Tensor, cameras: Cameras, far: float = 100.0
) -> Fragments:
    dr = _nvdiffrast()
    device = vertices.device
    if device not in _NVDR_CONTEXTS:
        _NVDR_CONTEXTS[device] = dr.RasterizeCudaContext(device=device)
    H, W = cameras.height, cameras.width
    cam = _camera_space(vertices.float(), cameras)
    tan_y = math.tan(cameras.fovy / 2)
    tan_x = tan_y * W / H
    n = cameras.near
    z = cam[..., 2]
    # OpenCV camera space → clip space; y down keeps nvdiffrast's row 0 at NDC y = −1, the top row of our grid
    clip = torch.stack(
        [cam[..., 0] / tan_x, cam[..., 1] / tan_y, (far + n) / (far - n) * z - 2 * far * n / (far - n), z], -1
    )
    rast, _ = dr.rasterize(_NVDR_CONTEXTS[device], clip.contiguous(), faces.int().contiguous(), (H, W))
    face = rast[..., 3].round().long() - 1
    u, v = rast[..., 0], rast[..., 1]
    bary = torch.stack([u, v, 1 - u - v], -1) * (face >= 0)[..., None]
    views = torch.arange(len(cameras), device=device)[:, None, None].expand_as(face)
    depth = (bary * z[:, faces.long()][views, face.clamp(min=0)]).sum(-1)
    return Fragments(face, bary.to(vertices.dtype), depth.to(vertices.dtype))


def rasterize_mesh(
    vertices: torch.Tensor, faces: torch.Tensor, cameras: Cameras, *, backend: str = "auto"
) -> Fragments:
    """Visible triangle and perspective-correct barycentrics per pixel. ``backend``: "auto" (nvdiffrast on CUDA when
    it imports, else torch), "torch" or "nvdiffrast"."""
    if backend not in {"auto", "torch", "nvdiffrast"}:
        raise ValueError(f"unknown mesh rasteriser backend {backend!r}: use auto, torch or nvdiffrast")
    faces = faces.to(device=vertices.device, dtype=torch.long)
    if backend == "nvdiffrast" or (backend == "auto" and vertices.is_cuda and nvdiffrast_available()):
        if not nvdiffrast_available():
            raise ImportError(
                "the nvdiffrast mesh rasteriser needs CUDA and nvdiffrast (pip install nvdiffrast)"
            )
        return _rasterize_nvdiffrast(vertices, faces, cameras)
    return _rasterize_torch(vertices, faces, cameras)


def interpolate(attributes: torch.Tensor, faces: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Per-pixel Σ_k b̃_k a_{f,k} → [V, C, H, W] (0 on background); differentiable w.r.t. ``attributes`` [N, C]."""
    faces = faces.to(device=attributes.device, dtype=torch.long)
    idx = faces[fragments.face.clamp(min=0)]  # [V, H, W, 3]
    w = fragments.bary.to(attributes) * fragments.mask[..., None]
    out = (attributes[idx] * w[..., None]).sum(-2)  # [V, H, W, C]
    return out.permute(0, 3, 1, 2)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted vertex normals from right-hand (counter-clockwise seen from outside) faces."""
    faces = faces.to(device=vertices.device, dtype=torch.long)
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    fn = torch.linalg.cross(v1 - v0, v2 - v0)
    vn = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), fn.repeat_interleave(3, 0))
    return vn / vn.norm(dim=-1, keepdim=True).clamp_min(1e-20)


def sample_texture(
    texture: torch.Tensor, uv: torch.Tensor, lod: torch.Tensor | None = None, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Lookup of ``texture`` [T_h, T_w, C] at ``uv`` [V, 2, H, W] (u across columns, v down the rows, texel (i, j)
    centred at ((j + ½)/T_w, (i + ½)/T_h)) → [V, C, H, W]; differentiable w.r.t. the texture.

    Without ``lod``: bilinear. With a level of detail per pixel [V, 1, H, W] (log2 texels per pixel): trilinear
    over a box-filtered mip pyramid (the release's ``linear-mipmap-linear``), so a minified texture is averaged,
    not aliased, and its gradients reach every texel under the pixel's footprint. ``mask`` [V, H, W]: look up only
    those pixels (the rest are 0)."""
    if mask is not None:
        sel = mask.reshape(-1)
        C, (V, _, H, W) = texture.shape[2], uv.shape
        flat_uv = uv.permute(0, 2, 3, 1).reshape(1, -1, 1, 2)[:, sel].permute(0, 3, 1, 2)  # [1, 2, P, 1]
        flat_lod = None if lod is None else lod.reshape(1, 1, -1, 1)[:, :, sel]
        vals = sample_texture(texture, flat_uv, flat_lod)[0, :, :, 0]  # [C, P]
        out = vals.new_zeros(V * H * W, C)
        out[sel] = vals.T
        return out.reshape(V, H, W, C).permute(0, 3, 1, 2)
    grid = (uv.permute(0, 2, 3, 1) * 2 - 1).to(texture)
    level = texture.permute(2, 0, 1)[None]
    V = uv.shape[0]

    def lookup(t):
        return F.grid_sample(
            t.expand(V, -1, -1, -1), grid, mode="bilinear", padding_mode="border", align_corners=False
        )

    if lod is None:
        return lookup(level)
    n_levels = int(math.log2(min(texture.shape[0], texture.shape[1]))) + 1
    lod = lod.to(texture).clamp(0, n_levels - 1)
    out = torch.zeros(V, texture.shape[2], *uv.shape[2:], dtype=texture.dtype, device=texture.device)
    for k in range(n_levels):
        w = (1 - (lod - k).abs()).clamp(min=0)  # the tent between levels ⌊lod⌋ and ⌈lod⌉
        if bool((w > 0).any()):
            out = out + w * lookup(level)
        if k + 1 < n_levels:
            level = F.avg_pool2d(level, 2)
    return out


def face_lod(
    vertices: torch.Tensor, faces: torch.Tensor, uvs: torch.Tensor, texture_size: int, cameras: Cameras
) -> torch.Tensor:
    """log2 of texels per pixel for each face in each view [V, F] (isotropic: √(UV area · T² / screen area)); the
    per-face stand-in for nvdiffrast's per-pixel UV derivatives."""
    faces = faces.to(device=vertices.device, dtype=torch.long)
    cam = _camera_space(vertices.double(), cameras)
    tan_y = math.tan(cameras.fovy / 2)
    z = cam[..., 2].clamp(min=cameras.near)
    px = cam[..., 0] / z / (tan_y * cameras.width / cameras.height) * cameras.width / 2
    py = cam[..., 1] / z / tan_y * cameras.height / 2
    x, y = px[:, faces], py[:, faces]  # [V, F, 3]
    screen = (
        (x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0]) - (x[..., 2] - x[..., 0]) * (y[..., 1] - y[..., 0])
    ).abs()
    u = uvs.double()[faces] * texture_size  # [F, 3, 2]
    tex = (
        (u[:, 1, 0] - u[:, 0, 0]) * (u[:, 2, 1] - u[:, 0, 1])
        - (u[:, 2, 0] - u[:, 0, 0]) * (u[:, 1, 1] - u[:, 0, 1])
    ).abs()
    return 0.5 * torch.log2(tex.clamp(min=1e-12)[None] / screen.clamp(min=1e-12))


def render_mesh(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    colors: torch.Tensor | None,
    cameras: Cameras,
    *,
    background: torch.Tensor | tuple[float, float, float] = (1.0, 1.0, 1.0),
    fragments: Fragments | None = None,
    normals: bool = False,
    backend: str = "auto",
    uvs: torch.Tensor | None = None,
    texture: torch.Tensor | None = None,
    mipmap: bool = True,
) -> MeshRenderOutput:
    """Render a vertex-coloured mesh into V views (colours [N, 3] in [0, 1]). Pass ``fragments`` from an earlier
    call with the same geometry and cameras to skip rasterisation (stage 2 re-renders fixed geometry many times).
    ``normals``: also the release's view cosine (the interpolated normal's component towards the camera).
    ``uvs`` [N, 2] and ``texture`` [T, T, 3]: colour from the texture instead (``colors`` is then ignored; pass
    None), differentiable w.r.t. the texture, as stage 2 optimises the release's UV albedo; mip-mapped trilinear
    lookups unless ``mipmap=False`` (bilinear)."""
    frags = fragments if fragments is not None else rasterize_mesh(vertices, faces, cameras, backend=backend)
    if texture is not None:
        if uvs is None:
            raise ValueError("a texture needs per-vertex uvs")
        mask = frags.mask[:, None].to(texture.dtype)
        lod = None
        if mipmap:
            per_face = face_lod(vertices, faces, uvs, texture.shape[0], cameras).to(texture)
            views = torch.arange(len(cameras), device=per_face.device)[:, None, None]
            lod = per_face[views, frags.face.clamp(min=0)][:, None]
        shaded = sample_texture(texture, interpolate(uvs.to(texture), faces, frags), lod, frags.mask)
        colors = texture
    else:
        mask = frags.mask[:, None].to(colors.dtype)
        shaded = interpolate(colors, faces, frags)
    bg = torch.as_tensor(background, dtype=colors.dtype, device=colors.device).reshape(1, 3, 1, 1)
    image = shaded + (1 - mask) * bg
    viewcos = None
    if normals:
        n = interpolate(vertex_normals(vertices.detach(), faces).to(colors), faces, frags)
        n = n / n.norm(dim=1, keepdim=True).clamp_min(1e-20)
        # OpenCV camera z points into the scene, so the direction to the camera is −z
        rz = cameras.viewmats[:, 2, :3].to(n)
        viewcos = -(n * rz[:, :, None, None]).sum(1, keepdim=True)
    return MeshRenderOutput(image, mask, frags.depth[:, None], viewcos, frags)
