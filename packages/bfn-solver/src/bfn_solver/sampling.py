"""Public sampling entry points and the method registry.

``sample_continuous(model, shape, steps, method=..., generator=None, ...)`` and
``sample_discrete(model, shape, num_classes, steps, method=..., generator=None, ...)`` run any registered method
by name; `CONTINUOUS_METHODS` / `DISCRETE_METHODS` describe them (order, stochastic or not, NFE per step).

Model convention (BFN time ``t`` ∈ [0, 1], ``t = 1`` at the data):
- continuous: ``model(mu, t) -> ε̂`` with ``mu`` of the sample shape (B, ...) and ``t`` a tensor of shape (B,);
- discrete: ``model(theta, t) -> logits`` with ``theta = softmax(z)`` of shape (B, ..., K) and ``t`` of shape (B,).
Both receive their inputs in ``model_dtype`` (default: the dtype of the model's first parameter, else the state
dtype); the solver state and all schedule coefficients stay in ``dtype`` (default float32) / float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from bfn_solver import continuous as C
from bfn_solver import discrete as D
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule, Spacing, time_grid
from gen_common.cli import progress as progress_bar
from gen_common.seeding import randn

__all__ = [
    "CONTINUOUS_METHODS",
    "DISCRETE_METHODS",
    "MethodInfo",
    "SampleOutput",
    "moment_matched_init",
    "sample_continuous",
    "sample_discrete",
]

Final = Literal["prediction", "denoise", "state"]


@dataclass(frozen=True)
class MethodInfo:
    """A registered sampler: the plain function, its theoretical order and how it spends network calls."""

    name: str
    fn: Callable[..., torch.Tensor]
    order: int
    stochastic: bool
    evals_per_step: int
    update: Callable[..., torch.Tensor] | None  # the one-call update rule (None: custom loop)
    summary: str
    official: str = ""  # the name in ML-GSAI/BFN-Solver, if it is there
    needs_eta: bool = True  # needs η > 0 (coefficients singular at t = 0)
    default_final: Final = "prediction"
    skips_first_call: bool = False  # continuous bfn: no network call at t = 0 (the official code discards it)
    extra_calls: int = 0  # solver++3: its second-order first step calls the network once more

    def nfe(self, steps: int, final: Final | None = None) -> int:
        """Network calls for ``steps`` steps (the original samplers skip the call at t = 0 where noted)."""
        final = final or self.default_final
        calls = steps * self.evals_per_step
        if self.skips_first_call:
            calls -= 1
        calls += self.extra_calls if steps > (1 if final == "prediction" else 0) else 0
        return calls + (1 if final == "denoise" else 0)


CONTINUOUS_METHODS: dict[str, MethodInfo] = {
    m.name: m
    for m in [
        MethodInfo("bfn", C.bfn, 1, True, 1, C.bfn_update, "original BFN sampler (Graves et al., Alg. 3)",
                   "BFN.sample (nnaisense)", needs_eta=False, default_final="denoise", skips_first_call=True),
        MethodInfo("sde_euler", C.sde_euler, 1, True, 1, C.sde_euler_update,
                   "Euler-Maruyama on the reverse SDE", "sde_euler"),
        MethodInfo("solver1", C.solver1, 1, False, 1, C.solver1_update, "BFN-Solver1 (noise prediction)",
                   "ode_bfnsolver1"),
        MethodInfo("solver2", C.solver2, 2, False, 2, None,
                   "BFN-Solver2 (noise prediction, single step, λ midpoint)"),
        MethodInfo("solver++1", C.solver_pp1, 1, False, 1, C.solver_pp1_update,
                   "BFN-Solver++1 (data prediction)"),
        MethodInfo("solver++2", C.solver_pp2, 2, False, 1, C.solver_pp2_update,
                   "BFN-Solver++2 (data prediction, multistep)", "ode_bfnsolver2_multi_step"),
        MethodInfo("solver++3", C.solver_pp3, 3, False, 1, None,
                   "BFN-Solver++3 (data prediction, multistep; DPM-Solver++(3M) in BFN time; beyond the paper)",
                   extra_calls=1),
        MethodInfo("sde_solver++1", C.sde_solver_pp1, 1, True, 1, C.sde_solver_pp1_update,
                   "first-order SDE solver in data prediction (= BFN update on any grid)"),
        MethodInfo("sde_solver++2", C.sde_solver_pp2, 2, True, 1, C.sde_solver_pp2_update,
                   "SDE-BFN-Solver++2 (multistep)", "sde_bfnsolver2_multi_step"),
    ]
}  # fmt: skip

DISCRETE_METHODS: dict[str, MethodInfo] = {
    m.name: m
    for m in [
        MethodInfo("bfn", D.bfn, 1, True, 1, None, "original BFN sampler (Graves et al., Alg. 9)",
                   "BFN.sample (nnaisense)", needs_eta=False, default_final="denoise"),
        MethodInfo("sde_euler", D.sde_euler, 1, True, 1, D.sde_euler_update,
                   "Euler-Maruyama on the reverse SDE", "sde_euler", needs_eta=False),
        MethodInfo("ode_euler", D.ode_euler, 1, False, 1, D.ode_euler_update,
                   "Euler on the probability-flow ODE", "ode_euler"),
        MethodInfo("solver1", D.solver1, 1, False, 1, D.solver1_update, "BFN-Solver1 (ODE)", "ode_bfnsolver1"),
        MethodInfo("solver2", D.solver2, 2, False, 2, None, "BFN-Solver2 (ODE, single step, midpoint)",
                   "ode_bfnsolver2_single_step"),
        MethodInfo("solver2_multistep", D.solver2_multistep, 2, False, 1, D.solver2_multistep_update,
                   "BFN-Solver2 (ODE, multistep)", "ode_bfnsolver2_multi_step"),
        MethodInfo("sde_solver1", D.sde_solver1, 1, True, 1, D.sde_solver1_update, "SDE-BFN-Solver1",
                   "sde_bfnsolver1", needs_eta=False),
        MethodInfo("sde_solver2", D.sde_solver2, 2, True, 1, D.sde_solver2_update,
                   "SDE-BFN-Solver2 (multistep)", "sde_bfnsolver2_multi_step", needs_eta=False),
    ]
}  # fmt: skip


@dataclass
class SampleOutput:
    """``samples``: continuous values (B, ...) or class ids (B, ...); ``nfe``: network calls per sample;
    ``probs``: (discrete) the final class probabilities (B, ..., K) the samples were decoded from;
    ``times``: the BFN time grid used (float64)."""

    samples: torch.Tensor
    nfe: int
    method: str
    times: torch.Tensor
    probs: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _lookup(registry: dict[str, MethodInfo], method: str, kind: str) -> MethodInfo:
    if method not in registry:
        raise ValueError(f"unknown {kind} method {method!r}; choose one of: {', '.join(registry)}")
    return registry[method]


def _infer_model_dtype(model: Any, model_dtype: torch.dtype | None) -> torch.dtype | None:
    if model_dtype is not None:
        return model_dtype
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            if p.is_floating_point():
                return p.dtype
    return None


def _infer_device(model: Any, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


def _grid(
    info: MethodInfo, schedule, steps: int, eta: float, spacing: Spacing
) -> tuple[torch.Tensor, list[float]]:
    if info.name == "bfn":
        if spacing != "time":
            raise ValueError(
                "the original BFN sampler is defined on the uniform grid t_i = i/n; for another grid use its "
                "update on any grid ('sde_solver++1' for continuous data, 'sde_solver1' with "
                "sample_prediction=True for discrete data)"
            )
        grid = time_grid(schedule, steps, 0.0, "time")
    else:
        if info.needs_eta and eta <= 0.0:
            raise ValueError(f"method {info.name!r} needs eta > 0 (its coefficients are singular at t = 0)")
        grid = time_grid(schedule, steps, eta, spacing)
    return grid, [float(v) for v in grid]


def _noise_fn(
    noise_sampler: Callable[[int], torch.Tensor] | None,
    shape: Sequence[int],
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype,
) -> Callable[[int], torch.Tensor]:
    if noise_sampler is None:
        return lambda i: randn(shape, generator, device=device, dtype=dtype)

    def fn(i: int) -> torch.Tensor:
        z = noise_sampler(i)
        if tuple(z.shape) != tuple(shape):
            raise ValueError(f"noise_sampler({i}) returned shape {tuple(z.shape)}, expected {tuple(shape)}")
        return z.to(device=device, dtype=dtype)

    return fn


def _check_final(final: str | None, info: MethodInfo) -> Final:
    final = final or info.default_final
    if final not in ("prediction", "denoise", "state"):
        raise ValueError(f"final must be 'prediction', 'denoise' or 'state', got {final!r}")
    return final  # type: ignore[return-value]


def moment_matched_init(
    schedule: ContinuousSchedule | DiscreteSchedule,
    shape: Sequence[int],
    eta: float,
    mean: torch.Tensor,
    var: torch.Tensor | float,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The official "optimal_mean_and_std" start at t = η, matching the first two moments of the true marginal
    from data statistics (the zero-mean default ignores the data mean, a bias the probability-flow ODE carries to
    the samples).

    Continuous: ``mean``/``var`` are the per-element data mean (broadcastable to the sample shape) and the mean
    per-element variance; μ_η ~ N(γ mean, γ(1 − γ) + γ² var). Discrete: ``mean`` is the class frequency vector
    E[e_x] (K,) or per position (L, K), ``var`` the mean per-position trace of Cov(e_x); z_η ~ N(β(K mean − 1),
    Kβ + K β² var), with ``shape`` the id shape (the class axis is appended).
    """
    if isinstance(schedule, ContinuousSchedule):
        g = float(schedule.gamma(eta))
        std = (g * (1 - g) + g * g * float(var)) ** 0.5
        return g * mean.to(dtype) + std * randn(tuple(shape), generator, dtype=dtype)
    k, b = schedule.num_classes, float(schedule.beta(eta))
    std = (k * b + k * b * b * float(var)) ** 0.5
    return b * (k * mean.to(dtype) - 1) + std * randn((*shape, k), generator, dtype=dtype)


@torch.no_grad()
def sample_continuous(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    shape: Sequence[int],
    steps: int,
    method: str = "solver++2",
    generator: torch.Generator | None = None,
    *,
    schedule: ContinuousSchedule | None = None,
    eta: float = 0.01,
    spacing: Spacing = "time",
    clip: float | None = 1.0,
    final: Final | None = None,
    x_init: torch.Tensor | None = None,
    noise_sampler: Callable[[int], torch.Tensor] | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    model_dtype: torch.dtype | None = None,
    progress: bool | None = False,
) -> SampleOutput:
    """Sample continuous data with a noise-prediction BFN ``model(mu, t) -> ε̂`` (``t``: shape (B,), BFN time).

    Args:
        shape: sample shape (B, ...); e.g. (B, 32, 32, 3) channels-last for the nnaisense CIFAR-10 network.
        steps: number of grid intervals (see `MethodInfo.nfe` / the returned ``nfe`` for network calls).
        method: one of `CONTINUOUS_METHODS`: bfn, sde_euler, solver1, solver2, solver++1, solver++2,
            sde_solver++1, sde_solver++2.
        schedule: σ₁ of the model (default σ₁ = 0.001, the CIFAR-10 checkpoint's).
        eta: the solvers start at t = η (the paper's τ = 1 − η; official 0.01) from μ ~ N(0, σ_η²)
            ("zero_mean_and_std"); the original BFN sampler always starts at t = 0 from μ = 0.
        spacing: "time" (uniform in t, official) or "logsnr" (uniform in λ).
        clip: x̂ is clipped to [−clip, clip] (data in [−1, 1]); None disables.
        final: "prediction" (skip the last update and return the last x̂: the official ``last_drop``; default
            for the solvers), "denoise" (integrate to t = 1 and return x̂(μ, 1), one more call; default for
            ``bfn`` as in nnaisense), "state" (return μ at t = 1).
        x_init / noise_sampler: the initial state and the per-step standard normals (step index -> tensor of
            the sample shape), for coupling runs (order checks) or custom priors.
    """
    info = _lookup(CONTINUOUS_METHODS, method, "continuous")
    schedule = schedule or ContinuousSchedule()
    final = _check_final(final, info)
    shape = tuple(int(s) for s in shape)
    dev = _infer_device(model, device)
    grid_t, grid = _grid(info, schedule, steps, eta, spacing)
    if x_init is not None:
        if tuple(x_init.shape) != shape:
            raise ValueError(f"x_init has shape {tuple(x_init.shape)}, expected {shape}")
        x = x_init.to(device=dev, dtype=dtype)
    elif info.name == "bfn":
        x = torch.zeros(shape, device=dev, dtype=dtype)
    else:
        x = float(schedule.sigma(grid[0])) * randn(shape, generator, device=dev, dtype=dtype)
    predict = C.ContinuousPredictor(
        model, schedule, clip=clip, model_dtype=_infer_model_dtype(model, model_dtype)
    )
    noise = _noise_fn(noise_sampler, shape, generator, dev, dtype)
    it = progress_bar(range(steps), desc=f"bfn-solver {method}", enabled=progress)
    out = info.fn(predict, x, grid, noise, final, steps=it)
    if not torch.isfinite(out).all():
        raise FloatingPointError(
            f"{method} produced non-finite samples; check the model's outputs (NaN/inf) and that it predicts ε̂ "
            "for BFN time t (t = 1 at the data)"
        )
    return SampleOutput(out, predict.nfe, method, grid_t)


@torch.no_grad()
def sample_discrete(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    shape: Sequence[int],
    num_classes: int,
    steps: int,
    method: str = "solver2_multistep",
    generator: torch.Generator | None = None,
    *,
    schedule: DiscreteSchedule | None = None,
    eta: float = 1e-3,
    spacing: Spacing = "time",
    final: Final | None = None,
    decode: Literal["mode", "sample"] = "mode",
    sample_prediction: bool = False,
    z_init: torch.Tensor | None = None,
    noise_sampler: Callable[[int], torch.Tensor] | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    model_dtype: torch.dtype | None = None,
    progress: bool | None = False,
) -> SampleOutput:
    """Sample class ids of shape ``shape`` (B, ...) from a discrete BFN ``model(theta, t) -> logits``.

    Args:
        num_classes: K (the model's vocabulary size; the schedule's K must agree).
        method: one of `DISCRETE_METHODS`: bfn, sde_euler, ode_euler, solver1, solver2, solver2_multistep,
            sde_solver1, sde_solver2.
        schedule: β₁ of the model (default β₁ = 0.75², the text8 checkpoint's).
        eta: solvers start at t = η from z ~ N(0, Kβ(η)) (official "zero_mean_and_std", η = 1e-3).
        final: "prediction" (default for solvers: the last step returns the network's logits without the last
            update, official ``last_drop``), "denoise" (integrate to t = 1, then the network at t = 1; default
            for ``bfn``), "state" (decode the latent z at t = 1 itself).
        decode: "mode" (argmax, the official choice) or "sample" (a draw from the final categorical).
        sample_prediction: replace ê by a one-hot sample (official ``cate_samp``) in sde_euler, ode_euler and
            sde_solver1.
        z_init / noise_sampler: the initial latent (B, ..., K) and the per-step standard normals.
    """
    info = _lookup(DISCRETE_METHODS, method, "discrete")
    schedule = schedule or DiscreteSchedule(num_classes)
    if schedule.num_classes != num_classes:
        raise ValueError(f"schedule has K={schedule.num_classes} classes but num_classes={num_classes}")
    if sample_prediction and method not in ("sde_euler", "ode_euler", "sde_solver1"):
        raise ValueError("sample_prediction is defined for sde_euler, ode_euler and sde_solver1 only")
    if decode not in ("mode", "sample"):
        raise ValueError(f"decode must be 'mode' or 'sample', got {decode!r}")
    final = _check_final(final, info)
    shape = tuple(int(s) for s in shape)
    zshape = (*shape, num_classes)
    dev = _infer_device(model, device)
    grid_t, grid = _grid(info, schedule, steps, eta, spacing)
    if z_init is not None:
        if tuple(z_init.shape) != zshape:
            raise ValueError(f"z_init has shape {tuple(z_init.shape)}, expected {zshape}")
        z = z_init.to(device=dev, dtype=dtype)
    else:
        std = float(torch.sqrt(num_classes * schedule.beta(grid[0]))) if info.name != "bfn" else 0.0
        z = (
            std * randn(zshape, generator, device=dev, dtype=dtype)
            if std > 0
            else torch.zeros(zshape, device=dev, dtype=dtype)
        )
    predict = D.DiscretePredictor(
        model,
        schedule,
        model_dtype=_infer_model_dtype(model, model_dtype),
        sample_prediction=sample_prediction,
        generator=generator,
    )
    noise = _noise_fn(noise_sampler, zshape, generator, dev, dtype)
    it = progress_bar(range(steps), desc=f"bfn-solver {method}", enabled=progress)
    logits = info.fn(predict, z, grid, noise, final, steps=it)
    if not torch.isfinite(logits).all():
        raise FloatingPointError(f"{method} produced non-finite logits; check the model's outputs")
    probs = torch.softmax(logits, dim=-1)
    if decode == "mode":
        ids = logits.argmax(-1)
    else:
        ids = D.gumbel_onehot(logits, generator).argmax(-1)
    return SampleOutput(ids, predict.nfe, method, grid_t, probs=probs)
