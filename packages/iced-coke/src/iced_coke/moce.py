"""MoCE sampling (paper Sec. 4, "Mixture of Concept Experts"): denoise the easily lost concept alone for the first
``k`` of ``T`` steps, then the full prompt for the remaining ``T − k``.

Two ways to run it on stock diffusers pipelines (nothing vendored):

* **single pipeline** (SD 1.x/2.x, SDXL base): the pipeline is called with the first concept and diffusers'
  ``callback_on_step_end`` swaps in the full prompt's embeddings after step ``k − 1``. ``k = 0`` is plain sampling
  of the prompt and ``k = T`` plain sampling of the first concept (same generator, bit-exact).
* **hand-off** (the released SDXL set-up): a base pipeline runs the first concept to ``denoising_end`` and an
  img2img refiner continues with the full prompt from ``denoising_start``. The cut is placed at the scheduler's
  ``k``-th timestep, so exactly ``k`` steps run in the base for any ``T``.

For the switch-step search, `stage1_latents` runs stage 1 once and keeps the latent after every step
(`Stage1Cache`), and `resume_stage2` continues from any cached step, so a probe costs only ``T − k`` UNet
evaluations and every probe starts from the same noise (common random numbers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "MoCEError",
    "Stage1Cache",
    "UNetCounter",
    "count_unet_calls",
    "handoff_fraction",
    "moce_sample",
    "resume_stage2",
    "stage1_latents",
    "supports_resume",
]

# Schedulers whose state at step k is (latents, step index) alone, so continuing from a cached latent equals the
# uninterrupted run. Multistep solvers (DPM-Solver++, PNDM, UniPC) keep a history of model outputs and are not.
_RESUMABLE = ("DDIMScheduler", "EulerDiscreteScheduler")


class MoCEError(ValueError):
    """Bad MoCE arguments (switch step outside 0..T, unsupported pipeline or scheduler)."""


def _check_step(switch_step: int, num_inference_steps: int) -> int:
    if isinstance(switch_step, bool) or int(switch_step) != switch_step:
        raise MoCEError(f"switch_step must be an integer step, got {switch_step!r}")
    if num_inference_steps < 1:
        raise MoCEError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
    k = int(switch_step)
    if not 0 <= k <= num_inference_steps:
        raise MoCEError(f"switch_step {k} is outside 0..{num_inference_steps} (num_inference_steps)")
    return k


def _is_sdxl(pipe: Any) -> bool:
    return hasattr(pipe, "text_encoder_2")


def _swap_tensors(pipe: Any, prompt: str | list[str], pipe_kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The callback tensors the pipeline would hold for ``prompt``: its encoder states, concatenated
    ``[negative, positive]`` under classifier-free guidance exactly as the pipeline's own loop does."""
    cfg = bool(pipe.do_classifier_free_guidance)
    device = pipe._execution_device
    n = int(pipe_kwargs.get("num_images_per_prompt") or 1)
    neg = pipe_kwargs.get("negative_prompt")
    clip_skip = pipe_kwargs.get("clip_skip")
    if _is_sdxl(pipe):
        pe, npe, pooled, npooled = pipe.encode_prompt(
            prompt=prompt,
            prompt_2=None,
            device=device,
            num_images_per_prompt=n,
            do_classifier_free_guidance=cfg,
            negative_prompt=neg,
            negative_prompt_2=pipe_kwargs.get("negative_prompt_2"),
            clip_skip=clip_skip,
        )
        if cfg:
            return {"prompt_embeds": torch.cat([npe, pe]), "add_text_embeds": torch.cat([npooled, pooled])}
        return {"prompt_embeds": pe, "add_text_embeds": pooled}
    pe, npe = pipe.encode_prompt(prompt, device, n, cfg, neg, clip_skip=clip_skip)
    if cfg:
        return {"prompt_embeds": torch.cat([npe, pe]), "negative_prompt_embeds": npe}
    return {"prompt_embeds": pe}


def _chain(first: Callable, user: Callable | None) -> Callable:
    if user is None:
        return first

    def both(pipe, i, t, kw):
        out = first(pipe, i, t, kw)
        kw = {**kw, **out}
        out.update(user(pipe, i, t, kw) or {})
        return out

    return both


def _reject(pipe_kwargs: dict[str, Any]) -> None:
    for bad in ("prompt", "prompt_embeds", "pooled_prompt_embeds", "denoising_start", "denoising_end"):
        if bad in pipe_kwargs:
            raise MoCEError(f"{bad}= is set by MoCE itself; pass the prompts as strings")


def moce_sample(
    pipe: Any,
    prompt: str | list[str],
    first_prompt: str | list[str],
    switch_step: int,
    num_inference_steps: int,
    generator: torch.Generator | list[torch.Generator] | None = None,
    *,
    refiner: Any | None = None,
    **pipe_kwargs: Any,
) -> Any:
    """Sample with the first concept for ``switch_step`` steps, then the full prompt (MoCE, paper Sec. 4).

    Returns what the pipeline returns for its ``output_type`` (the refiner's output in hand-off mode).
    Without ``refiner``: one pipeline, embeddings swapped by ``callback_on_step_end`` (SD and SDXL). With
    ``refiner`` (an img2img pipeline accepting ``denoising_start``): the released SDXL base → refiner hand-off,
    which needs ``1 <= switch_step``.
    """
    _reject(pipe_kwargs)
    k = _check_step(switch_step, num_inference_steps)
    T = num_inference_steps
    if refiner is not None:
        if k == 0:
            raise MoCEError("hand-off mode needs switch_step >= 1: the refiner cannot start from pure noise")
        user_cb = pipe_kwargs.pop("callback_on_step_end", None)
        out_type = pipe_kwargs.pop("output_type", "pil")
        if k == T:
            return pipe(
                prompt=first_prompt,
                num_inference_steps=T,
                generator=generator,
                output_type=out_type,
                **pipe_kwargs,
            )
        frac = handoff_fraction(pipe.scheduler, k, T)
        base = pipe(
            prompt=first_prompt,
            num_inference_steps=T,
            denoising_end=frac,
            output_type="latent",
            generator=generator,
            callback_on_step_end=user_cb,
            **pipe_kwargs,
        )
        return refiner(
            prompt=prompt,
            num_inference_steps=T,
            denoising_start=frac,
            image=base.images,
            generator=generator,
            output_type=out_type,
            **_refiner_kwargs(pipe_kwargs),
        )
    user_cb = pipe_kwargs.pop("callback_on_step_end", None)
    if k == 0 or k == T:
        text = prompt if k == 0 else first_prompt
        return pipe(
            prompt=text,
            num_inference_steps=T,
            generator=generator,
            callback_on_step_end=user_cb,
            **pipe_kwargs,
        )
    swap: dict[str, torch.Tensor] = {}

    def switch(p, i, t, kw):
        if i == k - 1:  # end of the k-th step: every later step sees the full prompt
            swap.update(_swap_tensors(p, prompt, pipe_kwargs))
            return dict(swap)
        return {}

    return pipe(
        prompt=first_prompt,
        num_inference_steps=T,
        generator=generator,
        callback_on_step_end=_chain(switch, user_cb),
        **pipe_kwargs,
    )


def _refiner_kwargs(pipe_kwargs: dict[str, Any]) -> dict[str, Any]:
    # Size arguments are base-only (the refiner reads them from the latents); everything else carries over.
    return {k: v for k, v in pipe_kwargs.items() if k not in ("height", "width", "latents")}


def handoff_fraction(scheduler: Any, switch_step: int, num_inference_steps: int) -> float:
    """The ``denoising_end``/``denoising_start`` fraction that puts exactly ``switch_step`` steps in the base.

    diffusers cuts at timestep ``round(N·(1 − f))``; the release passes ``f = k/T``, which is right for T = 40 but
    not for every T under "leading" spacing (T = 30, k = 1 runs no base step at all). The cut is placed at the
    scheduler's ``k``-th timestep instead, which equals ``k/T``'s cut whenever that one is right.
    """
    k = _check_step(switch_step, num_inference_steps)
    if getattr(scheduler, "order", 1) != 1:
        raise MoCEError(f"hand-off needs a first-order scheduler, got {type(scheduler).__name__}")
    probe = type(scheduler).from_config(scheduler.config)
    probe.set_timesteps(num_inference_steps, device="cpu")
    ts = [int(t) for t in probe.timesteps]
    n_train = int(scheduler.config.num_train_timesteps)
    # base keeps t >= cut, refiner t < cut: the cut is the last stage-1 timestep itself
    cut = ts[k - 1] if k >= 1 else n_train + 1
    return (n_train - cut) / n_train


# ----------------------------------------------------------------------------------------------- stage-1 cache


@dataclass
class Stage1Cache:
    """Stage-1 latents after every integer step ``1..max_step`` (keys are ints: the release's float-string keys
    miss whenever ``str((i+1)/T) != str(round(k/T, 5))``), plus the generator state the run started from, so
    ``k = 0`` and any stochastic part replay the same noise."""

    num_inference_steps: int
    first_prompt: Any
    latents: dict[int, torch.Tensor] = field(default_factory=dict)
    generator_state: torch.Tensor | None = None
    generator_device: str = "cpu"
    unet_calls: int = 0

    @property
    def max_step(self) -> int:
        return max(self.latents, default=0)

    def generator(self) -> torch.Generator | None:
        if self.generator_state is None:
            return None
        g = torch.Generator(self.generator_device)
        g.set_state(self.generator_state)
        return g

    def __getitem__(self, k: int) -> torch.Tensor:
        if k not in self.latents:
            raise MoCEError(
                f"step {k} is not cached (cached steps 1..{self.max_step}); re-run stage 1 with max_step >= {k}"
            )
        return self.latents[k]


class UNetCounter:
    """Counts UNet forward calls (one per denoising step, classifier-free guidance batched in one call)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, module, args, output) -> None:
        self.calls += 1


@contextlib.contextmanager
def count_unet_calls(*pipes: Any) -> Iterator[UNetCounter]:
    counter = UNetCounter()
    unets = {id(p.unet): p.unet for p in pipes if p is not None and getattr(p, "unet", None) is not None}
    handles = [u.register_forward_hook(counter) for u in unets.values()]
    try:
        yield counter
    finally:
        for h in handles:
            h.remove()


def _gen_state(generator: Any) -> tuple[torch.Tensor | None, str]:
    if isinstance(generator, torch.Generator):
        return generator.get_state(), str(generator.device)
    if generator is None:
        return None, "cpu"
    raise MoCEError("the stage-1 cache needs one torch.Generator (or None), not a list")


def stage1_latents(
    pipe: Any,
    first_prompt: str | list[str],
    num_inference_steps: int,
    max_step: int,
    generator: torch.Generator | None = None,
    **pipe_kwargs: Any,
) -> Stage1Cache:
    """Run stage 1 (the first concept) once to ``max_step`` and keep every step's latent (paper Sec. 4.2; the
    release runs the SDXL base to ``denoising_end = 0.5``). Later steps are skipped, not computed."""
    _reject(pipe_kwargs)
    max_step = _check_step(max_step, num_inference_steps)
    state, dev = _gen_state(generator)
    cache = Stage1Cache(num_inference_steps, first_prompt, generator_state=state, generator_device=dev)
    if max_step == 0:
        return cache

    def keep(p, i, t, kw):
        cache.latents[i + 1] = kw["latents"].detach().clone()
        if i + 1 >= max_step:
            p._interrupt = True  # the loop `continue`s past the remaining steps without a UNet call
        return {}

    kwargs = {k: v for k, v in pipe_kwargs.items() if k != "output_type"}
    with count_unet_calls(pipe) as c:
        pipe(
            prompt=first_prompt,
            num_inference_steps=num_inference_steps,
            generator=generator,
            output_type="latent",
            callback_on_step_end=keep,
            callback_on_step_end_tensor_inputs=["latents"],
            **kwargs,
        )
    cache.unet_calls = c.calls
    return cache


_RESUMED_CLASSES: dict[type, type] = {}


def _resumed_class(cls: type) -> type:
    """A subclass of the scheduler's class that starts ``_resume_offset`` steps into its own schedule."""
    if cls not in _RESUMED_CLASSES:

        class Resumed(cls):  # type: ignore[misc, valid-type]
            _resume_offset = 0

            @property
            def init_noise_sigma(self):  # the cached latents already carry step k's noise level
                return 1.0

            def set_timesteps(self, *args, **kwargs):
                super().set_timesteps(*args, **kwargs)
                off = self._resume_offset * self.order
                self.timesteps = self.timesteps[off:]
                if hasattr(cls, "set_begin_index"):
                    super().set_begin_index(off)

            def set_begin_index(self, begin_index: int = 0):
                super().set_begin_index(begin_index + self._resume_offset * self.order)

        Resumed.__name__ = Resumed.__qualname__ = f"Resumed{cls.__name__}"
        _RESUMED_CLASSES[cls] = Resumed
    return _RESUMED_CLASSES[cls]


def supports_resume(scheduler: Any) -> bool:
    """Whether continuing from a cached latent equals the uninterrupted run for this scheduler."""
    name = type(scheduler).__name__.removeprefix("Resumed")
    return name in _RESUMABLE and getattr(scheduler, "order", 1) == 1


@contextlib.contextmanager
def _resumed(scheduler: Any, k: int) -> Iterator[None]:
    original = scheduler.__class__
    scheduler.__class__ = _resumed_class(original)
    scheduler._resume_offset = k
    try:
        yield
    finally:
        scheduler.__class__ = original
        with contextlib.suppress(AttributeError):
            del scheduler._resume_offset


def resume_stage2(
    pipe: Any,
    cache: Stage1Cache,
    prompt: str | list[str],
    switch_step: int,
    *,
    refiner: Any | None = None,
    **pipe_kwargs: Any,
) -> Any:
    """Stage 2 of MoCE from the cached stage-1 latent at ``switch_step``: bit-identical to `moce_sample` with
    the same generator (single pipeline: DDIM or Euler schedulers; hand-off: the refiner's own
    ``denoising_start``). Costs ``T − k`` UNet evaluations."""
    _reject(pipe_kwargs)
    T = cache.num_inference_steps
    k = _check_step(switch_step, T)
    if refiner is not None:
        if k == 0:
            raise MoCEError("hand-off mode needs switch_step >= 1: the refiner cannot start from pure noise")
        frac = handoff_fraction(pipe.scheduler, k, T)
        return refiner(
            prompt=prompt,
            num_inference_steps=T,
            denoising_start=frac,
            image=cache[k],
            generator=cache.generator(),
            **_refiner_kwargs(pipe_kwargs),
        )
    if k == 0:
        return pipe(prompt=prompt, num_inference_steps=T, generator=cache.generator(), **pipe_kwargs)
    if not supports_resume(pipe.scheduler):
        raise MoCEError(
            f"{type(pipe.scheduler).__name__} keeps a solver history, so stage 2 cannot resume from a cached latent; "
            f"use one of {', '.join(_RESUMABLE)} or re-run both stages (cache=False)"
        )
    latents = cache[k]
    with _resumed(pipe.scheduler, k):
        return pipe(
            prompt=prompt, num_inference_steps=T, latents=latents, generator=cache.generator(), **pipe_kwargs
        )
