"""Deterministic DDIM sampling and inversion (Song et al. 2021, eq. 12 with σ = 0), as plain functions of an
ε-model ``eps_fn(x, t) -> ε``.

Inversion runs the DDIM update backwards in time, as the precursor does: from ``x`` at the previous (less noisy)
level, ``ε = eps_fn(x, t)`` is evaluated at the next timestep ``t`` and ``x_t = √ᾱ_t · x̂₀ + √(1 − ᾱ_t) · ε`` with
``x̂₀ = (x − √(1 − ᾱ_prev) ε) / √ᾱ_prev``. The first level uses ``final_alpha_cumprod`` exactly where diffusers'
DDIM scheduler does, so `ddim_sample` undoes `ddim_invert` up to the ε-model's change between neighbouring
levels (exactly, for an ε-model whose x̂₀ is constant).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["DDIMSchedule", "ddim_invert", "ddim_sample", "ddim_step"]

EpsFn = Callable[[torch.Tensor, int], torch.Tensor]


class DDIMSchedule:
    """ᾱ on the descending timesteps of a diffusers DDIM scheduler (``leading`` spacing, ``steps_offset``), with the
    ᾱ that follows the last timestep (``final_alpha_cumprod``)."""

    def __init__(
        self, alphas_cumprod: torch.Tensor, timesteps: Sequence[int], final_alpha_cumprod: float
    ) -> None:
        self.alphas_cumprod = alphas_cumprod.double().cpu()
        self.timesteps = [int(t) for t in timesteps]
        self.final = float(final_alpha_cumprod)

    @classmethod
    def from_scheduler(cls, scheduler: object, steps: int) -> DDIMSchedule:
        from diffusers import DDIMScheduler

        s = DDIMScheduler.from_config(scheduler.config)  # type: ignore[attr-defined]
        s.set_timesteps(steps)
        return cls(s.alphas_cumprod, s.timesteps.tolist(), float(s.final_alpha_cumprod))

    def alpha(self, i: int) -> float:
        """ᾱ at the i-th (descending) timestep; i = len(timesteps) is the level after the last one."""
        return float(self.alphas_cumprod[self.timesteps[i]]) if i < len(self.timesteps) else self.final


def ddim_step(eps: torch.Tensor, x: torch.Tensor, a_from: float, a_to: float) -> torch.Tensor:
    """Move ``x`` from level ᾱ = ``a_from`` to ``a_to`` along the deterministic DDIM path of ``eps``."""
    x0 = (x - (1 - a_from) ** 0.5 * eps) / a_from**0.5
    return a_to**0.5 * x0 + (1 - a_to) ** 0.5 * eps


def ddim_invert(eps_fn: EpsFn, x0: torch.Tensor, schedule: DDIMSchedule) -> list[torch.Tensor]:
    """Latents from clean ``x0`` up to the first (noisiest) timestep: ``[x0, x_{t_N}, …, x_{t_1}]``, the last
    being the inverted noise that `ddim_sample` starts from."""
    out = [x0]
    x = x0
    n = len(schedule.timesteps)
    for i in range(n - 1, -1, -1):
        t = schedule.timesteps[i]
        eps = eps_fn(x, t)
        x = ddim_step(eps, x, schedule.alpha(i + 1), schedule.alpha(i)).to(x0.dtype)
        out.append(x)
    return out


def ddim_sample(
    eps_fn: EpsFn,
    x: torch.Tensor,
    schedule: DDIMSchedule,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Deterministic DDIM from ``x`` at the first timestep down to clean data."""
    for i, t in enumerate(schedule.timesteps):
        eps = eps_fn(x, t)
        x = ddim_step(eps, x, schedule.alpha(i), schedule.alpha(i + 1)).to(x.dtype)
        if callback is not None:
            callback(i, x)
    return x
