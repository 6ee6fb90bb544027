"""A diffusers-style stepper for users who drive their own sampling loop: ``set_timesteps`` then, for each
``t`` in ``scheduler.timesteps``, ``sample = scheduler.step(model(scheduler.scale_model_input(sample, t), t_batch),
t, sample).prev_sample``. It runs the single-evaluation methods with exactly the update rules of
`sample_continuous` / `sample_discrete` (tested: same samples). Works without diffusers; with the ``diffusers``
extra, `bfn_solver.diffusers_scheduler.BFNSolverDiffusersScheduler` adds ``ConfigMixin``/``SchedulerMixin``.

Timesteps are BFN times t ∈ [0, 1) (t = 1 at the data), increasing; pass them to the network as a tensor of
shape (batch,). Continuous: ``model_output`` is ε̂ and ``sample`` is μ. Discrete: ``sample`` is the latent z
(B, ..., K), the network input is ``scale_model_input(z) = softmax(z)``, ``model_output`` are class logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from bfn_solver import continuous as C
from bfn_solver import discrete as D
from bfn_solver.sampling import CONTINUOUS_METHODS, DISCRETE_METHODS
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule, time_grid
from gen_common.seeding import randn

__all__ = ["BFNSchedulerOutput", "BFNSolverScheduler"]


@dataclass
class BFNSchedulerOutput:
    """``prev_sample``: the state at the next time (or, at the last step with final="prediction", the
    prediction itself: x̂ for continuous data, logits for discrete data); ``pred_original_sample``: x̂ or ê."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class BFNSolverScheduler:
    """Stepper over a BFN time grid for one of the single-evaluation methods of `CONTINUOUS_METHODS` /
    `DISCRETE_METHODS` (all but the single-step ``solver2``, which needs two calls per step)."""

    def __init__(
        self,
        data_type: Literal["continuous", "discrete"] = "continuous",
        algorithm: str = "solver++2",
        sigma_1: float = 0.001,
        num_classes: int | None = None,
        beta_1: float = 0.5625,
        eta: float | None = None,
        spacing: Literal["time", "logsnr"] = "time",
        clip: float | None = 1.0,
        final: Literal["prediction", "state"] = "prediction",
    ) -> None:
        if data_type == "continuous":
            registry, self.schedule = CONTINUOUS_METHODS, ContinuousSchedule(sigma_1)
        elif data_type == "discrete":
            if num_classes is None:
                raise ValueError("a discrete scheduler needs num_classes")
            registry, self.schedule = DISCRETE_METHODS, DiscreteSchedule(num_classes, beta_1)
        else:
            raise ValueError(f"data_type must be 'continuous' or 'discrete', got {data_type!r}")
        if algorithm not in registry:
            raise ValueError(
                f"unknown {data_type} algorithm {algorithm!r}; choose one of {', '.join(registry)}"
            )
        info = registry[algorithm]
        if info.evals_per_step != 1 or info.extra_calls:
            raise ValueError(
                f"{algorithm!r} calls the network more than once in a step; use sample_{data_type}"
            )
        if final not in ("prediction", "state"):
            raise ValueError(
                "final must be 'prediction' or 'state' (for 'denoise' call the model once more at t = 1)"
            )
        self.data_type = data_type
        self.algorithm = algorithm
        self.info = info
        self.eta = (0.01 if data_type == "continuous" else 1e-3) if eta is None else eta
        self.spacing = spacing
        self.clip = clip
        self.final = final
        self.order = info.order
        self._settings = {
            "data_type": data_type, "algorithm": algorithm, "sigma_1": sigma_1, "num_classes": num_classes,
            "beta_1": beta_1, "eta": eta, "spacing": spacing, "clip": clip, "final": final,
        }  # fmt: skip
        self.timesteps = torch.empty(0, dtype=torch.float64)
        self._grid: list[float] = []
        self._step_index = 0
        self._prev: tuple[float, torch.Tensor] | None = None

    def get_config(self) -> dict[str, Any]:
        return dict(self._settings)

    @property
    def num_inference_steps(self) -> int:
        return len(self._grid) - 1 if self._grid else 0

    @property
    def init_noise_sigma(self) -> float:
        """Standard deviation of the initial state at the first timestep (0 for the original samplers)."""
        if self.algorithm == "bfn":
            return 0.0
        if self.data_type == "continuous":
            return float(self.schedule.sigma(self.eta))
        return float(torch.sqrt(self.schedule.num_classes * self.schedule.beta(self.eta)))

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str | None = None) -> None:
        """Build the grid (uniform in t or in λ, as `sample_*`) and reset the multistep history."""
        eta = 0.0 if self.algorithm == "bfn" else self.eta
        if self.algorithm == "bfn" and self.spacing != "time":
            raise ValueError("the original BFN sampler is defined on the uniform grid")
        if self.info.needs_eta and eta <= 0:
            raise ValueError(f"{self.algorithm!r} needs eta > 0")
        grid = time_grid(self.schedule, num_inference_steps, eta, self.spacing)
        self._grid = [float(v) for v in grid]
        self.timesteps = grid[:-1].to(device) if device is not None else grid[:-1]
        self._step_index = 0
        self._prev = None

    def initial_sample(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """The official zero-mean start: μ ~ N(0, σ_η²) (continuous, ``shape`` = sample shape) or
        z ~ N(0, Kβ(η)) with ``shape`` = ids shape (the class axis is appended)."""
        full = tuple(shape) if self.data_type == "continuous" else (*shape, self.schedule.num_classes)
        if self.init_noise_sigma == 0.0:
            return torch.zeros(full, device=device, dtype=dtype)
        return self.init_noise_sigma * randn(full, generator, device=device, dtype=dtype)

    def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
        """Continuous: μ itself; discrete: θ = softmax(z)."""
        return sample if self.data_type == "continuous" else torch.softmax(sample, dim=-1)

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """Forward process at per-row BFN times: γx + sqrt(γ(1 − γ)) ε, or β(K e_x − 1) + sqrt(Kβ) ε for ids."""
        t = timesteps.double().cpu().reshape(-1)
        if self.data_type == "continuous":
            g = (
                self.schedule.gamma(t)
                .to(original_samples.device)
                .reshape(-1, *([1] * (original_samples.ndim - 1)))
            )
            return (g * original_samples.double() + torch.sqrt(g * (1 - g)) * noise.double()).to(noise.dtype)
        k = self.schedule.num_classes
        e = torch.nn.functional.one_hot(original_samples.long(), k).double()
        b = self.schedule.beta(t).to(e.device).reshape(-1, *([1] * (e.ndim - 1)))
        return (b * (k * e - 1) + torch.sqrt(k * b) * noise.double()).to(noise.dtype)

    def _index(self, timestep: Any) -> int:
        i = self._step_index
        if i >= self.num_inference_steps:
            raise ValueError(
                "step() called more often than set_timesteps() allows; call set_timesteps() again"
            )
        if timestep is not None:
            tv = float(timestep)
            if abs(tv - self._grid[i]) > 1e-6:
                raise ValueError(f"step() got timestep {tv}, but the next grid time is {self._grid[i]}")
        return i

    def step(
        self,
        model_output: torch.Tensor,
        timestep: Any,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
        noise: torch.Tensor | None = None,
    ) -> BFNSchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        """Advance ``sample`` from the current grid time to the next one. ``noise`` overrides the standard
        normal draw of stochastic methods (otherwise drawn from ``generator``)."""
        if not self._grid:
            raise ValueError("call set_timesteps() before step()")
        i = self._index(timestep)
        s, t = self._grid[i], self._grid[i + 1]
        last = i == self.num_inference_steps - 1
        if self.data_type == "continuous":
            out = self._step_continuous(model_output, sample, s, t, last, generator, noise)
        else:
            out = self._step_discrete(model_output, sample, s, t, last, generator, noise)
        self._step_index += 1
        return out if return_dict else (out.prev_sample, out.pred_original_sample)

    def _noise(self, like: torch.Tensor, generator, noise) -> torch.Tensor:
        if noise is not None:
            return noise.to(device=like.device, dtype=like.dtype)
        return randn(like.shape, generator, device=like.device, dtype=like.dtype)

    def _step_continuous(self, eps, x, s, t, last, generator, noise) -> BFNSchedulerOutput:
        pred = C.ContinuousPredictor(lambda *_: eps, self.schedule, clip=self.clip)
        x0 = pred.x0_from_eps(x, eps.to(x.dtype), s)
        if last and self.final == "prediction":
            return BFNSchedulerOutput(x0, x0)
        z = self._noise(x, generator, noise) if self.info.stochastic else None
        new = self.info.update(self.schedule, x, x0, s, t, self._prev, z)
        self._prev = (s, x0)
        return BFNSchedulerOutput(new, x0)

    def _step_discrete(self, logits, z, s, t, last, generator, noise) -> BFNSchedulerOutput:
        logits = logits.to(z.dtype)
        e = torch.softmax(logits, dim=-1)
        if last and self.final == "prediction":
            return BFNSchedulerOutput(logits, e)
        if self.algorithm == "bfn":
            # The original sampler: a one-hot draw from the prediction in SDE-Solver1's update (BFN Alg. 9).
            onehot = D.gumbel_onehot(logits, generator)
            new = D.sde_solver1_update(self.schedule, z, onehot, s, t, None, self._noise(z, generator, noise))
            return BFNSchedulerOutput(torch.log_softmax(new, dim=-1), e)
        xi = self._noise(z, generator, noise) if self.info.stochastic else None
        new = self.info.update(self.schedule, z, e, s, t, self._prev, xi)
        self._prev = (s, e)
        return BFNSchedulerOutput(new, e)
