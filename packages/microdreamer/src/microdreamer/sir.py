"""Score-based iterative reconstruction (SIR; MicroDreamer Alg. 1, as main.py train_step runs it).

Each outer iteration draws V views, builds fixed multi-view targets with the hybrid forward process and a DDIM
sampler, then reconstructs: ``inner_steps`` Adam steps on the pixel-space loss Σ_v ‖render(θ, c_v) − x̂_v‖₁ / V (plus
the reference-view terms). Iteration 0 samples its targets from pure noise (the full DDIM chain) and optimises
``init_steps`` times.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from microdreamer.cameras import Cameras
from microdreamer.checkpoints import Checkpointer
from microdreamer.ddim import DDIMGrid
from microdreamer.denoisers import Denoiser
from microdreamer.gaussians import GaussianModel
from microdreamer.loop import History, Reference, Trainer, check_family, sample_views
from microdreamer.presets import Preset
from microdreamer.schedules import iteration_k, t1_for, t2_for

__all__ = ["SIRResult", "check_family", "run_sir", "sir_targets"]


@torch.no_grad()
def sir_targets(
    denoiser: Denoiser,
    images: torch.Tensor,
    cameras: Cameras,
    *,
    grid: DDIMGrid,
    t2: int,
    t1: int,
    guidance_scale: float,
    eta: float,
    init: bool,
    noise: Callable[[torch.Tensor], torch.Tensor],
    doubled_inversion: bool = False,
) -> torch.Tensor:
    """x̂ = DDIM_{t2→0}(η, CFG)( DDIM-inversion_{t1→t2}(uncond)( add_noise(E(images), t1) ) ), decoded (eq. 5–7).

    ``init``: start from N(0, I) and run the whole chain (the release's ``t_stop = 1000``)."""
    lat = denoiser.encode(images)
    if init:
        x, t_stop = noise(lat), grid.num_train_timesteps
    else:
        x, t_stop = lat, t2
        if t1 > 0:
            x = grid.add_noise(lat, noise(lat), t1)
        inv = grid.inverse_timesteps
        for t_inv, t_next in itertools.pairwise(inv):
            if t_next <= t1:
                continue
            if t_next > t_stop:
                break
            e = denoiser.eps(
                x,
                t_inv,
                cameras,
                guidance_scale=guidance_scale,
                uncond_only=True,
                doubled=doubled_inversion,
                phase="inversion",
            )
            x = grid.inverse_step(e, t_next, x)
    for tt in grid.timesteps:
        if tt > t_stop:
            continue
        e = denoiser.eps(x, tt, cameras, guidance_scale=guidance_scale, phase="sample")
        x = grid.step(e, tt, x, eta=eta, noise=noise(x) if eta > 0 else None)
    out = denoiser.decode(x)
    if (
        out.shape[-2:] != images.shape[-2:]
    ):  # back to the render size bicubically, as all three releases' train_step
        out = F.interpolate(out, images.shape[-2:], mode="bicubic", align_corners=False)
    return out.to(images)


@dataclass
class SIRResult:
    model: GaussianModel
    history: History
    t2: list[int]
    t1: list[int]
    steps: int


def run_sir(
    model: GaussianModel,
    denoiser: Denoiser,
    preset: Preset,
    *,
    reference: Reference | None = None,
    generator: torch.Generator | None = None,
    evaluate: Callable[[GaussianModel], float] | None = None,
    rasterizer=None,
    progress: Callable[[int, int], None] | None = None,
    checkpoint: Checkpointer | None = None,
) -> SIRResult:
    """Run SIR on ``model`` in place; ``evaluate(model)`` (held-out error) is recorded after every outer iteration.

    ``checkpoint``: write atomic checkpoints every ``checkpoint.every`` outer iterations and, with
    ``checkpoint.resume``, continue from the latest one (the result is the uninterrupted run's, bit for bit)."""
    tr = Trainer(
        model,
        preset,
        reference=reference,
        evaluate=evaluate,
        denoiser=denoiser,
        rasterizer=rasterizer,
        generator=generator,
    )
    grid = DDIMGrid(preset.denoise_steps, alphas_cumprod=denoiser.alphas_cumprod)
    t2s, t1s = [], []
    device = model.xyz.device
    settings = {"loop": "sir", "preset": asdict(preset), "model": type(model).__name__}
    start = 0
    if checkpoint is not None and checkpoint.resume:
        start, extra = checkpoint.restore(tr, settings=settings)
        t2s, t1s = list(extra["t2"]), list(extra["t1"])
    else:
        tr.record()
    for it in range(start, preset.total_steps):
        if preset.official:
            tr.advance()  # the release's extra step-counter tick per outer iteration
        cams = sample_views(preset, tr.generator).to(device)
        t2 = t2_for(iteration_k(it), grid, preset.total_steps, preset.t_start, preset.t_end)
        t1 = t1_for(t2, grid, preset.inverse_ratio)
        t2s.append(t2)
        t1s.append(t1)
        with torch.no_grad():
            images = model.render(cams, rasterizer=rasterizer).image
        target = sir_targets(
            denoiser,
            images,
            cams,
            grid=grid,
            t2=t2,
            t1=t1,
            guidance_scale=preset.cfg,
            eta=preset.eta,
            init=it == 0,
            noise=tr.noise,
            doubled_inversion=preset.official,
        )
        n_inner = preset.init_steps if it == 0 else preset.inner_steps
        for j in range(n_inner):
            tr.advance()
            loss = tr.reference_loss()
            out = model.render(cams, track_means2d=True, rasterizer=rasterizer)
            loss = loss + F.l1_loss(out.image, target, reduction="sum") / len(cams)
            # the release also densifies on the very last step (if still inside the densification window), leaving the
            # new Gaussians unoptimised; only the official presets keep that
            last = it == preset.total_steps - 1 and j == n_inner - 1
            tr.optimise(loss, out, final=last and preset.official)
        if it == preset.total_steps - 1:
            tr.finish()
        tr.record()
        if checkpoint is not None and checkpoint.due(it + 1, preset.total_steps):
            checkpoint.save(tr, it + 1, settings=settings, extra={"t2": t2s, "t1": t1s})
        if progress is not None:
            progress(it + 1, preset.total_steps)
    return SIRResult(model, tr.history, t2s, t1s, tr.step)
