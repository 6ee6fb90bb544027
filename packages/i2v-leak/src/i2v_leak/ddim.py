"""diffusers' DDIM on an explicit list of timesteps (needed for the early start of DDPM-type models).

`diffusers.DDIMScheduler.step` assumes a fixed stride, ``prev_t = t − T // num_inference_steps``, so it cannot run
the "uniform trailing" grid over [0, M] that the paper uses (strides alternate, e.g. 19 and 18 for M = 940, S = 50).
`TimestepListDDIMScheduler` is a drop-in subclass: it keeps the parent's configuration, noise schedule, input
scaling and thresholding, and takes the previous timestep from the list instead. With a list equal to the parent's
own grid it reproduces ``DDIMScheduler.step`` exactly (tested).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch

from i2v_leak.schedules import start_timesteps

try:  # diffusers is a dependency, but the math modules must import without it
    from diffusers import DDIMScheduler
    from diffusers.schedulers.scheduling_ddim import DDIMSchedulerOutput
    from diffusers.utils.torch_utils import randn_tensor
except ImportError as exc:  # pragma: no cover - exercised only without diffusers
    raise ImportError(
        "i2v_leak.ddim needs diffusers: pip install i2v-leak (it depends on diffusers)"
    ) from exc

__all__ = ["TimestepListDDIMScheduler", "ddim_scheduler_for_start"]


class TimestepListDDIMScheduler(DDIMScheduler):
    """`DDIMScheduler` whose grid is an explicit, strictly decreasing list of timesteps (DDIM, Song et al. 2021,
    Eqs. 12 and 16, on an arbitrary sub-sequence).

    Set the list with ``set_timesteps(timesteps=[...])``, or fix an early start once with ``start_at = M`` so that
    pipelines calling ``set_timesteps(num_inference_steps)`` get ``start_timesteps(M, num_inference_steps)``.
    The step after the last listed timestep lands on ``final_alpha_cumprod`` (1 with ``set_alpha_to_one``, else
    ᾱ_0), as in the parent.
    """

    start_at: int | None = (
        None  # instance attribute, not config: saved pipelines stay loadable by stock diffusers
    )

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        timesteps: Sequence[int] | None = None,
    ) -> None:
        if timesteps is None:
            if num_inference_steps is None:
                raise ValueError("pass num_inference_steps or timesteps")
            if self.start_at is None:
                super().set_timesteps(num_inference_steps, device=device)
                self._prev = self._stride_prev(self.timesteps)
                return
            timesteps = start_timesteps(self.start_at, num_inference_steps)
        ts = [int(t) for t in timesteps]
        T = self.config.num_train_timesteps
        if not ts:
            raise ValueError("the timestep list is empty")
        if any(b >= a for a, b in itertools.pairwise(ts)):
            raise ValueError(f"timesteps must be strictly decreasing, got {ts[:6]}...")
        if ts[0] >= T or ts[-1] < 0:
            raise ValueError(f"timesteps must lie in [0, {T}), got {ts[0]}..{ts[-1]}")
        self.num_inference_steps = len(ts)
        self.timesteps = torch.tensor(ts, dtype=torch.int64, device=device)
        self._prev = {a: b for a, b in zip(ts, [*ts[1:], -1])}

    def _stride_prev(self, timesteps: torch.Tensor) -> dict[int, int]:
        stride = self.config.num_train_timesteps // self.num_inference_steps
        return {int(t): int(t) - stride for t in timesteps}

    def previous_timestep(self, timestep: int | torch.Tensor) -> int:
        t = int(timestep)
        prev = getattr(self, "_prev", None)
        if prev is None or t not in prev:
            raise ValueError(f"timestep {t} is not on the current grid; call set_timesteps first")
        return prev[t]

    def _alpha_prev(self, prev_t: int) -> torch.Tensor:
        return self.alphas_cumprod[prev_t] if prev_t >= 0 else self.final_alpha_cumprod

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        eta: float = 0.0,
        use_clipped_model_output: bool = False,
        generator: torch.Generator | None = None,
        variance_noise: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> DDIMSchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        """One DDIM update from ``timestep`` to the previous timestep on the list (Eq. 12 of the DDIM paper with
        σ_t(η) of Eq. 16)."""
        if self.num_inference_steps is None:
            raise ValueError("call set_timesteps before step")
        t = int(timestep)
        prev_t = self.previous_timestep(t)
        a_t = self.alphas_cumprod[t]
        a_prev = self._alpha_prev(prev_t)
        b_t = 1 - a_t

        kind = self.config.prediction_type
        if kind == "epsilon":
            x0, eps = (sample - b_t.sqrt() * model_output) / a_t.sqrt(), model_output
        elif kind == "sample":
            x0 = model_output
            eps = (sample - a_t.sqrt() * x0) / b_t.sqrt()
        elif kind == "v_prediction":
            x0 = a_t.sqrt() * sample - b_t.sqrt() * model_output
            eps = a_t.sqrt() * model_output + b_t.sqrt() * sample
        else:
            raise ValueError(f"unknown prediction_type {kind!r}: use epsilon, sample or v_prediction")

        if self.config.thresholding:
            x0 = self._threshold_sample(x0)
        elif self.config.clip_sample:
            x0 = x0.clamp(-self.config.clip_sample_range, self.config.clip_sample_range)
        if use_clipped_model_output:
            eps = (sample - a_t.sqrt() * x0) / b_t.sqrt()

        # σ_t(η)² = η² (1 − ᾱ_prev)/(1 − ᾱ_t) (1 − ᾱ_t/ᾱ_prev)   (DDIM Eq. 16)
        var = (1 - a_prev) / b_t * (1 - a_t / a_prev)
        std = eta * var.sqrt()
        prev = a_prev.sqrt() * x0 + (1 - a_prev - std**2).clamp(min=0).sqrt() * eps
        if eta > 0:
            if variance_noise is not None and generator is not None:
                raise ValueError("pass either generator or variance_noise, not both")
            if variance_noise is None:
                variance_noise = randn_tensor(
                    model_output.shape,
                    generator=generator,
                    device=model_output.device,
                    dtype=model_output.dtype,
                )
            prev = prev + std * variance_noise
        if not return_dict:
            return prev, x0
        return DDIMSchedulerOutput(prev_sample=prev, pred_original_sample=x0)


def ddim_scheduler_for_start(scheduler: Any, M: int | None) -> TimestepListDDIMScheduler:
    """A `TimestepListDDIMScheduler` with ``scheduler``'s configuration whose grid starts at M (None: the stock
    grid of that configuration, stepped exactly like `DDIMScheduler`)."""
    new = TimestepListDDIMScheduler.from_config(scheduler.config)
    T = new.config.num_train_timesteps
    if M is not None and not 1 <= int(M) <= T:
        raise ValueError(f"M must be in [1, {T}] for this scheduler, got {M}")
    new.start_at = None if M is None else int(M)
    return new
