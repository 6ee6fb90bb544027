"""The multi-view denoiser protocol that SIR and SDS drive, a call counter, and the exact analytic denoiser.

A denoiser maps rendered views to its latent space (``encode``/``decode``) and predicts ε for a batch of latents at
one timestep given the views' cameras. ``eps(..., uncond_only=True)`` is what DDIM inversion uses; with
``doubled=True`` it runs the CFG-doubled batch and keeps the unconditional half, as the release does.

The paper's speed claim is about network evaluations, so every adapter reports to a :class:`CallCounter`:
``calls`` counts forward passes, ``nfe`` counts them with the CFG doubling (a doubled batch is 2), per phase
("sample", "inversion", "sds").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from microdreamer.cameras import Cameras
from microdreamer.ddim import scaled_linear_alphas_cumprod

__all__ = ["AnalyticDenoiser", "CallCounter", "Denoiser"]


@dataclass
class CallCounter:
    calls: int = 0
    nfe: int = 0
    by_phase: dict[str, int] = field(default_factory=dict)

    def record(self, phase: str, doubled: bool) -> None:
        n = 2 if doubled else 1
        self.calls += 1
        self.nfe += n
        self.by_phase[phase] = self.by_phase.get(phase, 0) + n

    def reset(self) -> None:
        self.calls, self.nfe, self.by_phase = 0, 0, {}


@runtime_checkable
class Denoiser(Protocol):
    family: str  # "zero123" | "imagedream" | "mvdream" | "analytic": which presets fit
    alphas_cumprod: torch.Tensor
    counter: CallCounter

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...

    def eps(
        self,
        latents: torch.Tensor,
        t: int,
        cameras: Cameras,
        *,
        guidance_scale: float,
        uncond_only: bool = False,
        doubled: bool = True,
        phase: str = "sample",
    ) -> torch.Tensor: ...


class LatentDenoiser:
    """What the latent-space adapters (Stable-Zero123, MVDream/ImageDream) share: the device and dtype of their
    UNet, and the VAE round trip. The posterior sample of ``encode`` draws from the adapter's own CPU ``generator``
    (not torch's global one), so a run repeats under a seed; `run` seeds it and checkpoints save it. ``resize``: how
    renders reach the VAE's size, as each release does it."""

    unet: torch.nn.Module
    vae: torch.nn.Module
    image_size: int
    resize = "bilinear"

    def _init_generator(self) -> None:
        self.generator = torch.Generator().manual_seed(0)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images, (self.image_size, self.image_size), mode=self.resize, align_corners=False)
        post = self.vae.encode((2 * x - 1).to(self.device, self.dtype)).latent_dist
        noise = torch.randn(post.mean.shape, generator=self.generator).to(post.mean)
        return (post.mean + post.std * noise) * self.vae.config.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        img = self.vae.decode(latents.to(self.dtype) / self.vae.config.scaling_factor).sample
        return (img / 2 + 0.5).clamp(0, 1).float()


def denoiser_generators(denoiser) -> dict[str, torch.Generator]:
    """The denoiser's own random generator (latent denoisers draw the VAE posterior sample from it), if it has one:
    a run reseeds it and a checkpoint saves it."""
    g = getattr(denoiser, "generator", None)
    return {"denoiser": g} if isinstance(g, torch.Generator) else {}


def _gaussian_eps(x: torch.Tensor, a: float, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """The exact ε-prediction (posterior mean of ε) when x₀ ~ N(mean, var·I) and x_t = √a x₀ + √(1−a) ε."""
    x0 = mean + (a**0.5 * var / (a * var + 1 - a)) * (x - a**0.5 * mean)
    return (x - a**0.5 * x0) / (1 - a) ** 0.5


class AnalyticDenoiser:
    """Exact ε-model of Gaussian data around a known scene's renders, in pixel space ([-1, 1], no VAE).

    Conditional on the camera: x₀ ~ N(2·render(scene, cam) − 1, data_std²). Unconditional: the per-pixel marginal
    over an orbit of cameras (mean and variance of the renders, plus data_std²), i.e. what a camera-agnostic model
    of the same data would learn. Both posteriors are closed form, so CFG, DDIM, inversion and SDS act on a model
    whose optimum is the true view: the reconstruction error measures the 3D method, not the network.
    """

    family = "analytic"

    def __init__(
        self,
        scene,
        *,
        data_std: float = 0.05,
        uncond: str = "marginal",
        background=(1.0, 1.0, 1.0),
        alphas_cumprod: torch.Tensor | None = None,
        counter: CallCounter | None = None,
    ):
        if uncond not in {"marginal", "same"}:
            raise ValueError("uncond must be 'marginal' or 'same'")
        self.scene = scene
        self.data_std = float(data_std)
        self.uncond = uncond
        self.background = background
        self.alphas_cumprod = alphas_cumprod if alphas_cumprod is not None else scaled_linear_alphas_cumprod()
        self.counter = counter or CallCounter()
        self._cache = None
        self._marginal: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def target(self, cameras: Cameras) -> torch.Tensor:
        """The true views in [0, 1] (the last camera batch is cached: a DDIM chain asks for the same views)."""
        key = (cameras.viewmats.cpu().numpy().tobytes(), cameras.width, cameras.height, cameras.fovy)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.scene.render(cameras, self.background).image)
        return self._cache[1]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return images * 2 - 1

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return ((latents + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def _marginal_stats(self, cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
        key = (cameras.width, cameras.height, round(cameras.fovy, 6), float(cameras.radii[0]))
        if key not in self._marginal:
            from microdreamer.cameras import orbit_cameras

            el = torch.tensor([-30.0, 0.0, 30.0]).repeat_interleave(12)
            az = torch.arange(12.0).repeat(3) * 30 - 180
            ring = orbit_cameras(
                el, az, float(cameras.radii[0]), size=cameras.width, fovy_deg=cameras.fovy * 180 / torch.pi
            )
            views = self.encode(self.target(ring))
            self._marginal[key] = (views.mean(0, keepdim=True), views.var(0, keepdim=True) + self.data_std**2)
        return self._marginal[key]

    @torch.no_grad()
    def eps(self, latents, t, cameras, *, guidance_scale, uncond_only=False, doubled=True, phase="sample"):
        a = float(self.alphas_cumprod[t])
        var_c = torch.full((), self.data_std**2, dtype=latents.dtype)
        mean_c = self.encode(self.target(cameras)).to(latents)
        if self.uncond == "same":
            mean_u, var_u = mean_c, var_c
        else:
            mean_u, var_u = (s.to(latents) for s in self._marginal_stats(cameras))
        self.counter.record(phase, doubled or not uncond_only)
        e_u = _gaussian_eps(latents, a, mean_u, var_u)
        if uncond_only:
            return e_u
        e_c = _gaussian_eps(latents, a, mean_c, var_c)
        return e_u + guidance_scale * (e_c - e_u)
