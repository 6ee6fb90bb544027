"""One call to give a stock diffusers image-to-video pipeline the paper's inference fixes, without forking it.

`wrap_pipeline(pipe, M=..., stats=...)` returns a `CILPipeline` that is called exactly like ``pipe`` and runs
(Sec. 4) an early start at M plus, when statistics are given, Analytic-Init:

- `StableVideoDiffusionPipeline` (EDM, Euler): M is σ_max. The wrapper passes the Karras grid from M as the
  pipeline's own ``sigmas=`` argument and the Analytic-Init draw as ``latents=`` (divided by the scheduler's
  ``init_noise_sigma``, which the pipeline multiplies back in).
- `I2VGenXLPipeline` (DDPM, DDIM): M is a timestep. For the duration of the call the scheduler is replaced by
  `TimestepListDDIMScheduler` with the same configuration whose grid is `start_timesteps(M, steps)` (the stock
  DDIM cannot step an uneven grid); Analytic-Init uses ᾱ at the first timestep, t = M − 1, and goes in as
  ``latents=``. The caller's pipeline is restored afterwards.

With transformers >= 5 the stock I2VGen-XL pipeline fails on its default ``clip_skip=1`` (it reaches for
``text_encoder.text_model``, which transformers 5 flattened away); the wrapper then computes the same prompt
embeddings itself (hidden state −(clip_skip+1), then the final layer norm) and passes them in, in both modes.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from i2v_leak.analytic_init import analytic_init_ve, analytic_init_vp
from i2v_leak.ddim import ddim_scheduler_for_start
from i2v_leak.presets import Preset, get_preset
from i2v_leak.schedules import edm_sigmas, start_timesteps
from i2v_leak.stats import LatentStats

__all__ = ["CILPipeline", "detect_kind", "wrap_pipeline"]


def detect_kind(pipe: Any) -> str:
    """ "svd" or "i2vgenxl" from the pipeline's class (or its UNet's, for subclasses with other names)."""
    names = [type(pipe).__name__, type(getattr(pipe, "unet", None)).__name__]
    if any("StableVideoDiffusion" in n or "SpatioTemporal" in n for n in names):
        return "svd"
    if any("I2VGenXL" in n for n in names):
        return "i2vgenxl"
    raise ValueError(
        f"cannot wrap a {type(pipe).__name__}: i2v-leak supports StableVideoDiffusionPipeline and I2VGenXLPipeline"
    )


@dataclass
class _Call:
    """The arguments of one pipeline call, with the pipeline's own defaults filled in."""

    args: dict[str, Any]
    height: int
    width: int
    num_frames: int
    steps: int
    batch: int
    generator: Any


class CILPipeline:
    """A stock pipeline plus early start (``M``) and Analytic-Init (``stats``); call it like the pipeline.

    ``fix=False`` runs the stock pipeline (the baseline). `initial_latents` and `schedule` expose what a call
    would use, for inspection and tests.
    """

    def __init__(
        self, pipe: Any, M: float | None = None, stats: LatentStats | None = None, *, kind: str | None = None
    ) -> None:
        self.pipe = pipe
        self.kind = kind or detect_kind(pipe)
        self.M = M
        self.stats = stats
        if M is not None:
            if self.kind == "i2vgenxl":
                T = pipe.scheduler.config.num_train_timesteps
                if float(M) != int(M) or not 1 <= int(M) <= T:
                    raise ValueError(f"M must be an integer timestep in [1, {T}] for I2VGen-XL, got {M}")
                self.M = int(M)
            elif not float(M) > pipe.scheduler.config.sigma_min:
                raise ValueError(f"M is σ_max for SVD and must exceed σ_min, got {M}")

    def __repr__(self) -> str:
        return f"CILPipeline({type(self.pipe).__name__}, M={self.M}, stats={'yes' if self.stats else 'no'})"

    # -- argument handling --------------------------------------------------------------------------------
    def _bind(self, args: Sequence[Any], kwargs: dict[str, Any]) -> _Call:
        sig = inspect.signature(self.pipe.__call__)
        bound = sig.bind_partial(*args, **kwargs)
        full = {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}
        full.update(bound.arguments)
        unet = self.pipe.unet
        scale = self.pipe.vae_scale_factor
        height = full.get("height") or unet.config.sample_size * scale
        width = full.get("width") or unet.config.sample_size * scale
        num_frames = full.get("num_frames") or getattr(unet.config, "num_frames", 16)
        nvp = full.get("num_videos_per_prompt") or 1
        if self.kind == "svd":
            image = full.get("image")
            b = 1 if not isinstance(image, (list, torch.Tensor)) else len(image)
        else:
            prompt, embeds = full.get("prompt"), full.get("prompt_embeds")
            if isinstance(prompt, list):
                b = len(prompt)
            elif prompt is None and embeds is not None:
                b = embeds.shape[0]
            else:
                b = 1
        return _Call(
            bound.arguments,
            int(height),
            int(width),
            int(num_frames),
            int(full.get("num_inference_steps") or 25),
            b * int(nvp),
            full.get("generator"),
        )

    # -- what a call uses -----------------------------------------------------------------------------------
    def schedule(self, steps: int) -> list[float] | list[int]:
        """The sigma list (SVD, with the final 0) or timestep list (I2VGen-XL) a fixed call with ``steps`` uses."""
        sched = self.pipe.scheduler
        if self.kind == "svd":
            M = self.M if self.M is not None else float(sched.config.sigma_max)
            return edm_sigmas(M, steps, sigma_min=float(sched.config.sigma_min))
        if self.M is not None:
            return start_timesteps(self.M, steps)
        probe = ddim_scheduler_for_start(sched, None)
        probe.set_timesteps(steps)
        return [int(t) for t in probe.timesteps]

    def initial_latents(
        self,
        batch: int,
        height: int,
        width: int,
        num_frames: int,
        steps: int,
        generator: torch.Generator | list[torch.Generator] | None = None,
    ) -> torch.Tensor:
        """The Analytic-Init start x_M (before the scheduler's ``init_noise_sigma`` division) for a call."""
        if self.stats is None:
            raise ValueError("Analytic-Init needs latent statistics: pass stats= (see `i2v-leak stats`)")
        self.stats.check(height, width, num_frames)
        h, w = height // self.pipe.vae_scale_factor, width // self.pipe.vae_scale_factor
        sched = self.pipe.scheduler
        if self.kind == "svd":
            c = self.pipe.unet.config.in_channels // 2  # the other half is the concatenated image latent
            shape, layout = (batch, num_frames, c, h, w), "BFCHW"
            sigma0 = self.schedule(steps)[0]
            draw = lambda g, n: analytic_init_ve(self.stats, sigma0, (n, *shape[1:]), g, layout=layout)  # noqa: E731
        else:
            c = self.pipe.unet.config.in_channels
            shape, layout = (batch, c, num_frames, h, w), "BCFHW"
            t0 = int(self.schedule(steps)[0])
            alpha_bar = float(sched.alphas_cumprod[t0])
            draw = lambda g, n: analytic_init_vp(self.stats, alpha_bar, (n, *shape[1:]), g, layout=layout)  # noqa: E731
        if isinstance(generator, list):
            if len(generator) != batch:
                raise ValueError(f"{len(generator)} generators for a batch of {batch}")
            return torch.cat([draw(g, 1) for g in generator])
        return draw(generator, batch)

    # -- calls --------------------------------------------------------------------------------------------------
    def __call__(self, *args: Any, fix: bool = True, **kwargs: Any) -> Any:
        call = self._bind(args, kwargs)
        if self.kind == "i2vgenxl":
            call.args.update(self._i2vgenxl_prompt_shim(call.args))
        if not fix or (self.M is None and self.stats is None):
            return self.pipe(**call.args)
        for clash in ("latents", "sigmas"):
            if call.args.get(clash) is not None:
                raise ValueError(
                    f"{clash}= is set by the early-start fix; call with fix=False to pass your own"
                )
        if self.kind == "svd":
            return self._call_svd(call)
        return self._call_i2vgenxl(call)

    def baseline(self, *args: Any, **kwargs: Any) -> Any:
        """The stock pipeline's output for the same arguments."""
        return self(*args, fix=False, **kwargs)

    def _device_dtype(self, module: Any) -> tuple[torch.device, torch.dtype]:
        return self.pipe._execution_device, next(module.parameters()).dtype

    def _call_svd(self, call: _Call) -> Any:
        sched = self.pipe.scheduler
        args = dict(call.args)
        sigmas = self.schedule(call.steps) if self.M is not None else None
        if sigmas is not None:
            args["sigmas"] = sigmas
            args.pop("num_inference_steps", None)
        if self.stats is not None:
            x = self.initial_latents(
                call.batch, call.height, call.width, call.num_frames, call.steps, call.generator
            )
            # The pipeline multiplies given latents by init_noise_sigma after setting this same grid.
            if sigmas is not None:
                sched.set_timesteps(sigmas=sigmas)
            else:
                sched.set_timesteps(call.steps)
            device, dtype = self._device_dtype(self.pipe.image_encoder)
            args["latents"] = (x / float(sched.init_noise_sigma)).to(device, dtype)
        return self.pipe(**args)

    def _call_i2vgenxl(self, call: _Call) -> Any:
        original = self.pipe.scheduler
        args = dict(call.args)
        self.pipe.scheduler = ddim_scheduler_for_start(original, self.M)
        try:
            if self.stats is not None:
                x = self.initial_latents(
                    call.batch, call.height, call.width, call.num_frames, call.steps, call.generator
                )
                device, dtype = self._device_dtype(self.pipe.unet)
                args["latents"] = (x / float(self.pipe.scheduler.init_noise_sigma)).to(device, dtype)
            return self.pipe(**args)
        finally:
            self.pipe.scheduler = original

    def _i2vgenxl_prompt_shim(self, args: dict[str, Any]) -> dict[str, Any]:
        """Prompt embeddings with the clip_skip semantics of the stock pipeline, for text encoders without the
        ``text_model`` attribute that pipeline expects (transformers >= 5)."""
        te = self.pipe.text_encoder
        clip_skip = args.get(
            "clip_skip", inspect.signature(self.pipe.__call__).parameters["clip_skip"].default
        )
        if clip_skip is None or hasattr(te, "text_model") or args.get("prompt_embeds") is not None:
            return {}
        prompt = args.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt or [""])
        neg = args.get("negative_prompt")
        negs = [neg] * len(prompts) if isinstance(neg, str) else list(neg or [""] * len(prompts))
        device = self.pipe._execution_device
        norm = te.final_layer_norm

        def encode(texts: list[str]) -> torch.Tensor:
            ids = self.pipe.tokenizer(
                texts,
                padding="max_length",
                max_length=self.pipe.tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(device)
            with torch.no_grad():
                hidden = te(ids, output_hidden_states=True).hidden_states[-(clip_skip + 1)]
                return norm(hidden)

        return {
            "prompt": None,
            "negative_prompt": None,
            "prompt_embeds": encode(prompts),
            "negative_prompt_embeds": encode(negs),
        }


def wrap_pipeline(
    pipe: Any,
    M: float | None = None,
    stats: LatentStats | str | None = None,
    *,
    preset: str | Preset | None = None,
) -> CILPipeline:
    """Wrap a `StableVideoDiffusionPipeline` or `I2VGenXLPipeline` with early start at ``M`` and Analytic-Init
    from ``stats`` (a `LatentStats` or a path to one). ``preset`` ("svd", "i2vgenxl", ...) fills in M when it is
    not given (SVD: σ_max 100; I2VGen-XL: 940)."""
    if isinstance(stats, (str, bytes)) or hasattr(stats, "__fspath__"):
        stats = LatentStats.load(stats)  # type: ignore[arg-type]
    if M is None and preset is not None:
        M = (preset if isinstance(preset, Preset) else get_preset(preset)).M
    return CILPipeline(pipe, M=M, stats=stats)  # type: ignore[arg-type]
