"""What SIR and SDS share: view sampling, the reference-view terms, the optimiser step with densification, and the
history of held-out error against diffusion calls and time."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from microdreamer.cameras import Cameras, orbit_cameras
from microdreamer.denoisers import denoiser_generators
from microdreamer.gaussians import GaussianModel
from microdreamer.presets import Preset

__all__ = ["History", "Reference", "Trainer", "sample_views"]


@dataclass
class Reference:
    """The input view (Zero123-style image-to-3D): RGB on white [1, 3, H, W] and its alpha mask [1, 1, H, W]."""

    image: torch.Tensor
    mask: torch.Tensor
    elevation: float = 0.0


@dataclass
class History:
    """One row per evaluation: network evaluations (with the CFG doubling), forward passes, optimisation steps,
    seconds of work (evaluation excluded) and the held-out error (NaN without an evaluator)."""

    nfe: list[int] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    error: list[float] = field(default_factory=list)

    def nfe_to_reach(self, error: float) -> int | None:
        """The first NFE count at which the error is ≤ ``error`` (None if never)."""
        for n, e in zip(self.nfe, self.error):
            if e <= error:
                return n
        return None

    def seconds_to_reach(self, error: float) -> float | None:
        for s, e in zip(self.seconds, self.error):
            if e <= error:
                return s
        return None


def sample_views(preset: Preset, generator: torch.Generator, size: int | None = None) -> Cameras:
    """Views at even azimuths from a random base, each with its own random elevation (main.py train_step,
    ``even_view: True``): hor_i = base + (360 // V)·i with base ~ U{−180, …, −180 + 360//V − 1}, ver ~ U{min_ver, …,
    max_ver − 1} after the release's clamping to ±80° around the default elevation."""
    V = preset.views
    step = 360 // V
    base = int(torch.randint(-180, -180 + step, (1,), generator=generator))
    e = preset.elevation
    lo = max(min(preset.min_ver, preset.min_ver - e), -80 - e)
    hi = min(max(preset.max_ver, preset.max_ver - e), 80 - e)
    vers = (
        torch.randint(int(lo), int(hi), (V,), generator=generator).double()
        if hi > lo
        else torch.full((V,), float(lo))
    )
    hors = torch.tensor([base + step * i for i in range(V)], dtype=torch.float64)
    return orbit_cameras(e + vers, hors, preset.radius, size=size or preset.render_size, fovy_deg=preset.fovy)


def check_family(preset: Preset, denoiser) -> None:
    fam = getattr(denoiser, "family", None)
    if fam != preset.family:
        raise ValueError(
            f"preset {preset.name!r} is for a {preset.family} denoiser but the denoiser given is {fam!r}; "
            f"pick a preset made for it"
        )


class Trainer:
    """The per-step bookkeeping of both loops: lr schedule, Adam step, densification, clock and history."""

    def __init__(
        self,
        model: GaussianModel,
        preset: Preset,
        *,
        reference: Reference | None = None,
        evaluate: Callable[[GaussianModel], float] | None = None,
        denoiser=None,
        rasterizer=None,
        generator: torch.Generator | None = None,
    ):
        """``denoiser``: the run's denoiser (checked against the preset's family); its call counter is the run's,
        and its own generator (the VAE-posterior noise) is checkpointed with the loop's."""
        if denoiser is not None:
            check_family(preset, denoiser)
        self.model, self.preset, self.reference = model, preset, reference
        self.counter = None if denoiser is None else denoiser.counter
        self.generators = {} if denoiser is None else denoiser_generators(denoiser)
        self.evaluate, self.rasterizer = evaluate, rasterizer
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.step = 0
        self.history = History()
        self.optimizer = model.training_setup()
        self._t0 = time.perf_counter()
        self._paused = 0.0
        self.ref_cams = None
        if reference is not None:
            # the fixed reference camera: azimuth 0 for Zero123 (90 for the multi-view models' front view)
            az = 90.0 if preset.family in {"imagedream", "mvdream"} else 0.0
            self.ref_cams = orbit_cameras(
                [reference.elevation],
                [az],
                preset.radius,
                size=reference.image.shape[-1],
                fovy_deg=preset.fovy,
            )

    def advance(self) -> None:
        self.step += 1
        self.model.update_learning_rate(self.step)

    def reference_loss(self) -> torch.Tensor | float:
        p = self.preset
        if self.reference is None or (p.ref_loss <= 0 and p.ref_mask_loss <= 0):
            return 0.0
        out = self.model.render(self.ref_cams.to(self.model.xyz.device), rasterizer=self.rasterizer)
        ref = self.reference
        return p.ref_loss * F.l1_loss(
            out.image, ref.image.to(out.image), reduction="sum"
        ) + p.ref_mask_loss * F.mse_loss(out.alpha, ref.mask.to(out.alpha), reduction="sum")

    def optimise(self, loss: torch.Tensor, out, *, final: bool) -> None:
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        c = self.model.config
        if c.density_start_iter <= self.step <= c.density_end_iter:
            views = [out.means2d.shape[0] - 1] if self.preset.official else None
            self.model.add_densification_stats(out, views)
            if self.step % c.densification_interval == 0 or final:
                self.model.densify_and_prune(
                    c.densify_grad_threshold,
                    c.densify_min_opacity,
                    c.densify_extent,
                    c.max_screen_size,
                    generator=self.generator,
                )
                self.optimizer = self.model.optimizer

    def resume_clock(self, seconds: float) -> None:
        """Continue the work clock from ``seconds`` (a resumed run's history stays cumulative)."""
        self._t0 = time.perf_counter() - seconds
        self._paused = 0.0

    def record(self) -> None:
        t_work = time.perf_counter() - self._t0 - self._paused
        t_eval = time.perf_counter()
        err = float(self.evaluate(self.model)) if self.evaluate is not None else math.nan
        self._paused += time.perf_counter() - t_eval
        h = self.history
        h.nfe.append(self.counter.nfe if self.counter else 0)
        h.calls.append(self.counter.calls if self.counter else 0)
        h.steps.append(self.step)
        h.seconds.append(t_work)
        h.error.append(err)

    def finish(self) -> None:
        # the release's last prune (main.py GUI.train): prune(min_opacity=0.01, extent=1, max_screen_size=1). Its
        # screen-size test only ever sees max_radii2D = 0 there (the statistics stop after step 300 and the last
        # densification zeroed them); with statistics still running it would delete every visible Gaussian wider
        # than one pixel, so only the opacity and world-size tests are applied.
        self.model.prune(min_opacity=0.01, extent=1.0, max_screen_size=None, world_size=True)

    def noise(self, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.shape, generator=self.generator, dtype=like.dtype).to(like.device)
