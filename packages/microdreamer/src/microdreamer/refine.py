"""Stage 2: refine the exported mesh's colours against the diffusion model, geometry fixed (the release's main2.py).

What the release runs (MicroDreamer main2.py with configs/image_sai.yaml, DreamGaussian's renderer): 8 views at
elevation 0 and even azimuths from a random base; targets from the guidance's ``refine``, i.e. SDEdit: noise the
renders' latents to t = timesteps[int(N·strength)] of an N-step DDIM grid (N = 50, strength 0.8: t = 181 for
Stable-Zero123), then DDIM (η = 0, CFG 2, the method's default, main2.py passes none) back to 0 (the renders
shrunk to the VAE's size and the targets grown back bilinearly, unlike the SIR step's bicubic shrink); the targets stay
fixed for ``recon_steps`` = 30 Adam steps on MSE(render, target) (mean-reduced) + the reference view's masked MSE
(pixels with coverage and view cosine > 0.5); the colours (a UV texture there, vertex colours here) are optimised
as logits with Adam at lr 0.2 (``texture_lr``); ``iters_refine`` = 1 such round for Stable-Zero123.

That target is the package's SIR target with t1 = t2 = t (noise straight to t, no inversion) on an N-step grid, so
:func:`microdreamer.sir.sir_targets` builds it through the same denoiser protocol (and the same call counter).
Release quirk not reproduced: its ImageDream/MVDream branch re-makes the targets at *every* one of the 30 steps
(the Zero123 branch makes them once); here ``steps_per_target`` decides for every denoiser.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from microdreamer.cameras import Cameras, orbit_cameras
from microdreamer.ddim import DDIMGrid
from microdreamer.denoisers import Denoiser
from microdreamer.gaussians import Adam
from microdreamer.loop import Reference
from microdreamer.mesh import Mesh
from microdreamer.mesh_render import rasterize_mesh, render_mesh
from microdreamer.sir import sir_targets

if TYPE_CHECKING:
    from microdreamer.texture import TexturedMesh

__all__ = ["RefineConfig", "RefineResult", "mesh_heldout_error", "refine_mesh_colors", "refine_views"]


@dataclass(frozen=True)
class RefineConfig:
    """The released stage-2 settings (main2.py, configs/image_sai.yaml, zero123_utils ``refine`` defaults)."""

    steps: int = 30  # Adam steps in all (iters_refine 1 × recon_steps 30 for Stable-Zero123)
    steps_per_target: int = 30  # recon_steps: the targets are re-made every this many steps
    views: int = 8  # batch_size in main2.py
    elevation: float = 0.0  # absolute: main2.py adds ver = −elevation to the input's elevation
    radius: float = 2.0
    fovy: float = 49.1
    render_size: int = 512
    lr: float = 0.2  # texture_lr, on the colour logits
    denoise_steps: int = 50
    strength: float = 0.8  # start index int(N·strength) on the descending grid: t = 181 for N = 50
    guidance_scale: float = 2.0
    eta: float = 0.0  # diffusers' DDIMScheduler.step default; refine passes none
    guidance_weight: float = 1.0  # lambda_zero123
    reference_weight: float = 1.0
    background: float = 1.0

    def __post_init__(self):
        if self.steps < 0 or self.steps_per_target < 1 or self.views < 1 or self.render_size < 2:
            raise ValueError(
                "refinement needs steps ≥ 0, steps_per_target ≥ 1, views ≥ 1 and render_size ≥ 2"
            )
        if not 0 <= self.strength < 1:
            raise ValueError(f"strength must be in [0, 1), got {self.strength}")

    def timestep(self, grid: DDIMGrid) -> int:
        return grid.timesteps[int(self.denoise_steps * self.strength)]


@dataclass
class RefineResult:
    mesh: Mesh | TexturedMesh
    losses: list[float] = field(default_factory=list)
    timestep: int = 0
    nfe: int = 0
    seconds: float = 0.0
    error_before: float | None = None
    error_after: float | None = None


def refine_views(config: RefineConfig, generator: torch.Generator) -> Cameras:
    """main2.py's views: even azimuths from a random base in [−180, −180 + 360 // V), one elevation."""
    step = 360 // config.views
    base = int(torch.randint(-180, -180 + step, (1,), generator=generator))
    az = [base + step * i for i in range(config.views)]
    return orbit_cameras(
        [config.elevation] * config.views, az, config.radius, size=config.render_size, fovy_deg=config.fovy
    )


@torch.no_grad()
def mesh_heldout_error(
    mesh: Mesh | TexturedMesh,
    cameras: Cameras,
    truth: torch.Tensor,
    *,
    background: float = 1.0,
    backend: str = "auto",
) -> float:
    """Mean |render − truth| of the mesh (vertex-coloured or textured) over ``cameras`` (e.g.
    :class:`microdreamer.toy.HeldOut`'s)."""
    verts, faces, albedo, uvs = _albedo(mesh, "cpu")
    out = _render(verts, faces, albedo, uvs, cameras.to("cpu"), background=(background,) * 3, backend=backend)
    return float((out.image - truth.to(out.image)).abs().mean())


def _albedo(mesh, device):
    """(vertices, faces, albedo, uvs): the albedo is the vertex colours [N, 3] or the texture [T, T, 3]."""
    verts = torch.from_numpy(np.asarray(mesh.vertices, dtype=np.float32)).to(device)
    faces = torch.from_numpy(np.asarray(mesh.faces, dtype=np.int64)).to(device)
    if hasattr(mesh, "texture"):
        uvs = torch.from_numpy(np.asarray(mesh.uvs, dtype=np.float32)).to(device)
        return verts, faces, torch.from_numpy(np.asarray(mesh.texture, dtype=np.float32)).to(device), uvs
    return verts, faces, torch.from_numpy(np.asarray(mesh.colors, dtype=np.float32)).to(device), None


def _render(verts, faces, albedo, uvs, cams, **kw):
    if uvs is None:
        return render_mesh(verts, faces, albedo, cams, **kw)
    return render_mesh(verts, faces, None, cams, uvs=uvs, texture=albedo, **kw)


def refine_mesh_colors(
    mesh: Mesh | TexturedMesh,
    denoiser: Denoiser,
    config: RefineConfig | None = None,
    *,
    reference: Reference | None = None,
    generator: torch.Generator | None = None,
    evaluate: Callable[[Mesh | TexturedMesh], float] | None = None,
    device: torch.device | str = "cpu",
    backend: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> RefineResult:
    """Optimise ``mesh``'s vertex colours, or its texture for a :class:`microdreamer.texture.TexturedMesh` (the
    release's case), against SDEdit-style targets of ``denoiser`` (geometry fixed); returns a new mesh of the same
    kind. ``evaluate(mesh)`` (a held-out error) is recorded before and after."""
    cfg = config or RefineConfig()
    gen = generator or torch.Generator().manual_seed(0)
    device = torch.device(device)
    err0 = evaluate(mesh) if evaluate is not None else None
    verts, faces, albedo, uvs = _albedo(mesh, device)
    col = albedo.clamp(1e-6, 1 - 1e-6)
    logits = torch.log(col / (1 - col)).requires_grad_(True)  # the release's trunc_rev_sigmoid
    opt = Adam([{"params": [logits], "lr": cfg.lr, "name": "albedo"}], eps=1e-8)  # torch.optim.Adam's eps
    grid = DDIMGrid(cfg.denoise_steps, alphas_cumprod=denoiser.alphas_cumprod)
    t = cfg.timestep(grid)
    bg = (cfg.background,) * 3

    def noise(x: torch.Tensor) -> torch.Tensor:  # drawn on the CPU: the same seed gives the same run anywhere
        return torch.randn(x.shape, generator=gen, dtype=torch.float32).to(x)

    ref_frags = ref_valid = ref_image = None
    if reference is not None and cfg.reference_weight > 0:
        size = reference.image.shape[-1]
        ref_cam = orbit_cameras([reference.elevation], [0.0], cfg.radius, size=size, fovy_deg=cfg.fovy).to(
            device
        )
        ref_out = _render(verts, faces, col, uvs, ref_cam, background=bg, normals=True, backend=backend)
        ref_frags = ref_out.fragments
        ref_valid = ((ref_out.alpha > 0) & (ref_out.viewcos > 0.5)).float()
        ref_image = reference.image.to(device)
    counter = getattr(denoiser, "counter", None)
    nfe0 = counter.nfe if counter is not None else 0
    losses: list[float] = []
    start = time.perf_counter()
    cams = frags = target = None
    for s in range(cfg.steps):
        if s % cfg.steps_per_target == 0:
            cams = refine_views(cfg, gen).to(device)
            frags = rasterize_mesh(verts, faces, cams, backend=backend)
            with torch.no_grad():
                images = _render(
                    verts, faces, torch.sigmoid(logits), uvs, cams, background=bg, fragments=frags
                ).image
            size = getattr(denoiser, "image_size", None)  # latent denoisers: the VAE's input size
            if size is not None and images.shape[-1] != size:
                # the release's refine shrinks the renders bilinearly (its SIR step, bicubically: the encoder's)
                images = F.interpolate(images, (size, size), mode="bilinear", align_corners=False)
            target = sir_targets(
                denoiser,
                images,
                cams,
                grid=grid,
                t2=t,
                t1=t,
                guidance_scale=cfg.guidance_scale,
                eta=cfg.eta,
                init=False,
                noise=noise,
            )
            if target.shape[-1] != cfg.render_size:  # main2.py grows the refined images back bilinearly
                target = F.interpolate(
                    target, (cfg.render_size, cfg.render_size), mode="bilinear", align_corners=False
                )
        colors = torch.sigmoid(logits)
        out = _render(verts, faces, colors, uvs, cams, background=bg, fragments=frags)
        loss = cfg.guidance_weight * F.mse_loss(out.image, target)
        if ref_frags is not None:
            ref = _render(verts, faces, colors, uvs, ref_cam, background=bg, fragments=ref_frags).image
            loss = loss + cfg.reference_weight * F.mse_loss(ref * ref_valid, ref_image * ref_valid)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(s + 1, cfg.steps)
    seconds = time.perf_counter() - start
    fitted = torch.sigmoid(logits).detach().cpu().numpy()
    refined = dataclasses.replace(mesh, **{"texture" if uvs is not None else "colors": fitted})
    err1 = evaluate(refined) if evaluate is not None else None
    nfe = (counter.nfe - nfe0) if counter is not None else 0
    return RefineResult(refined, losses, t, nfe, round(seconds, 3), err0, err1)
