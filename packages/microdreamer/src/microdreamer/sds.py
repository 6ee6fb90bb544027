"""Score distillation sampling (Poole et al. 2022, eq. 3) with the same denoiser, renderer and views as SIR: the
baseline of MicroDreamer's speed comparison.

∇_θ L = E_{t,ε}[ w(t) (ε̂_CFG(x_t, t) − ε) ∂z/∂θ ] with w(t) = 1 − ᾱ_t, z = E(render(θ)) and DreamGaussian's annealed
timestep t = round((1 − s/S)·T) clipped to [0.02 T, 0.98 T]; implemented as ½‖z − sg(z − w(ε̂ − ε))‖² / V.
One doubled (CFG) forward pass per optimisation step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from microdreamer.checkpoints import Checkpointer
from microdreamer.denoisers import Denoiser
from microdreamer.gaussians import GaussianModel
from microdreamer.loop import History, Reference, Trainer, sample_views
from microdreamer.presets import Preset

__all__ = ["SDSResult", "run_sds"]


@dataclass
class SDSResult:
    model: GaussianModel
    history: History
    steps: int


def run_sds(
    model: GaussianModel,
    denoiser: Denoiser,
    preset: Preset,
    *,
    steps: int = 500,
    t_range: tuple[float, float] = (0.02, 0.98),
    anneal: bool = True,
    reference: Reference | None = None,
    generator: torch.Generator | None = None,
    evaluate: Callable[[GaussianModel], float] | None = None,
    eval_every: int = 25,
    rasterizer=None,
    progress: Callable[[int, int], None] | None = None,
    checkpoint: Checkpointer | None = None,
) -> SDSResult:
    """``checkpoint``: atomic checkpoints every ``checkpoint.every`` steps; with ``checkpoint.resume``, continue from
    the latest one."""
    tr = Trainer(
        model,
        preset,
        reference=reference,
        evaluate=evaluate,
        denoiser=denoiser,
        rasterizer=rasterizer,
        generator=generator,
    )
    T = len(denoiser.alphas_cumprod)
    lo, hi = int(T * t_range[0]), int(T * t_range[1])
    device = model.xyz.device
    settings = {
        "loop": "sds",
        "preset": asdict(preset),
        "model": type(model).__name__,
        "steps": steps,
        "t_range": list(t_range),
        "anneal": anneal,
        "eval_every": eval_every,
    }
    start = 0
    if checkpoint is not None and checkpoint.resume:
        start, _ = checkpoint.restore(tr, settings=settings)
    else:
        tr.record()
    for s in range(start, steps):
        tr.advance()
        cams = sample_views(preset, tr.generator).to(device)
        if anneal:
            t = int(min(max(round((1 - min(1.0, (s + 1) / steps)) * T), lo), hi))
        else:
            t = int(torch.randint(lo, hi + 1, (1,), generator=tr.generator))
        out = model.render(cams, track_means2d=True, rasterizer=rasterizer)
        z = denoiser.encode(out.image)
        eps = tr.noise(z)
        a = float(denoiser.alphas_cumprod[t])
        with torch.no_grad():
            x_t = a**0.5 * z + (1 - a) ** 0.5 * eps
            e_hat = denoiser.eps(x_t, t, cams, guidance_scale=preset.cfg, phase="sds")
            grad = torch.nan_to_num((1 - a) * (e_hat - eps))
        loss = 0.5 * F.mse_loss(z, (z - grad).detach(), reduction="sum") / len(cams) + tr.reference_loss()
        tr.optimise(loss, out, final=False)
        if s == steps - 1:
            tr.finish()
        if (s + 1) % eval_every == 0 or s == steps - 1:
            tr.record()
        if checkpoint is not None and checkpoint.due(s + 1, steps):
            checkpoint.save(tr, s + 1, settings=settings, extra={})
        if progress is not None:
            progress(s + 1, steps)
    return SDSResult(model, tr.history, tr.step)
