"""Empirical convergence orders of every sampler on exact toys (no network error).

The error each kind of method controls is measured against a reference the method must converge to, and the
order is the least-squares slope of −log(error) against log(steps):

- ODE solvers, continuous: pathwise error ‖x_N − x_ref‖ (RMS over a batch) of the state at t = 1 on a 2-D
  Gaussian mixture, from the same initial states; reference: single-step BFN-Solver2 with many steps.
- ODE solvers, discrete: pathwise L1 error of softmax(z) at t = 1 on a categorical joint, same set-up.
- SDE solvers, continuous (and the original sampler): weak error |mean − m| + |std − s| of the output x̂(μ_1, 1)
  on a 1-D Gaussian, whose dynamics are linear: the output is affine in the initial state and in each step's
  noise, so its exact mean and variance come from one batched run with unit impulses (no Monte Carlo); the
  reference is the exact law of x̂(μ_1, 1). The solvers start from the exact marginal at t = η.
- SDE solvers, discrete: weak error ‖E[ê(z_1)] − E_ref[ê(z_1)]‖₁ over a batch that shares one Brownian path per
  sample with the reference (common random numbers), from exact initial latents.
- The original discrete BFN sampler draws categorical samples, which no Brownian path couples: weak error of
  E[ê(z_1)] against the exact marginals (E[p(x | z_1)] = p(x)), by plain Monte Carlo over two positions (with a
  single position it is exact at any step count: with the exact posterior, sampling the class and then the
  sender is ancestral sampling of the Bayesian flow; with several positions the per-position draws ignore
  their correlation, a first-order error).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bfn_solver.sampling import CONTINUOUS_METHODS, DISCRETE_METHODS, sample_continuous, sample_discrete
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule, Spacing, time_grid
from bfn_solver.toy import (
    CategoricalJoint,
    ExactCategoricalModel,
    ExactMixtureModel,
    GaussianMixture,
)
from gen_common.plotting import new_figure, save_figure

__all__ = ["OrderResult", "brownian_noise", "fit_order", "plot_orders", "run_order_check"]


@dataclass
class OrderResult:
    data: str
    method: str
    expected: int
    order: float | None  # None: not measured (see notes)
    error_kind: str
    steps: list[int]
    nfe: list[int]
    errors: list[float]
    notes: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.data}/{self.method}"


def fit_order(steps: Sequence[int], errors: Sequence[float]) -> float:
    """−slope of log(error) vs log(steps) by least squares."""
    x = np.log(np.asarray(steps, dtype=float))
    y = np.log(np.maximum(np.asarray(errors, dtype=float), 1e-300))
    return float(-np.polyfit(x, y, 1)[0])


def brownian_noise(
    fine_grid: torch.Tensor, shape: Sequence[int], generator: torch.Generator
) -> Callable[[torch.Tensor], Callable[[int], torch.Tensor]]:
    """One Brownian path W on ``fine_grid``; returns ``for_grid(grid) -> noise_sampler`` giving the normalised
    increments (W(t_{i+1}) − W(t_i))/sqrt(t_{i+1} − t_i) on any sub-grid of the fine grid."""
    dt = torch.diff(fine_grid)
    inc = torch.randn((len(dt), *shape), generator=generator, dtype=torch.float64)
    inc = inc * dt.sqrt().reshape(-1, *([1] * len(shape)))
    w = torch.cat([torch.zeros((1, *shape), dtype=torch.float64), inc.cumsum(0)])

    def for_grid(grid: torch.Tensor) -> Callable[[int], torch.Tensor]:
        idx = torch.searchsorted(fine_grid, grid)
        if not torch.allclose(fine_grid[idx], grid, rtol=0, atol=1e-12):
            raise ValueError("the grid is not a sub-grid of the Brownian path's grid")

        def noise(i: int) -> torch.Tensor:
            return (w[idx[i + 1]] - w[idx[i]]) / math.sqrt(float(grid[i + 1] - grid[i]))

        return noise

    return for_grid


def _continuous_ode(methods, steps, batch, spacing, seed) -> list[OrderResult]:
    sch = ContinuousSchedule()
    mix = GaussianMixture.ring()
    model = ExactMixtureModel(mix, sch)
    eta = 0.01
    g = torch.Generator().manual_seed(seed)
    x = mix.sample(batch, g)
    x_init, _ = sch.sample_mu(x, torch.full((batch,), eta, dtype=torch.float64), g)
    kw = dict(x_init=x_init, clip=None, final="state", dtype=torch.float64, spacing=spacing, eta=eta)
    # 16× the largest step count: the reference error must stay below a third-order method's (solver++3)
    ref = sample_continuous(model, x_init.shape, 16 * max(steps) + 512, "solver2", **kw).samples
    out = []
    for m in methods:
        errs, nfes = [], []
        for n in steps:
            r = sample_continuous(model, x_init.shape, n, m, **kw)
            errs.append(float((r.samples - ref).pow(2).sum(-1).mean().sqrt()))
            nfes.append(r.nfe)
        info = CONTINUOUS_METHODS[m]
        out.append(
            OrderResult(
                "continuous", m, info.order, fit_order(steps, errs), "pathwise RMS", list(steps), nfes, errs
            )
        )
    return out


def _gaussian_moments(model, sch, method, n, spacing, eta, m, s) -> tuple[float, float, int]:
    """Exact output mean and variance of a sampler on the 1-D Gaussian (linear dynamics, impulse responses)."""
    rows = n + 2
    if method == "bfn":
        a, v0 = 0.0, 0.0  # the original sampler starts from the prior μ = 0 at t = 0, which is exact
    else:
        gam = float(sch.gamma(eta))
        a, v0 = gam * m, gam**2 * s**2 + gam * (1 - gam)
    x_init = torch.full((rows, 1), a, dtype=torch.float64)
    x_init[1] += 1.0

    def impulses(i: int) -> torch.Tensor:
        z = torch.zeros(rows, 1, dtype=torch.float64)
        z[i + 2] = 1.0
        return z

    r = sample_continuous(
        model, (rows, 1), n, method, x_init=x_init, noise_sampler=impulses, clip=None, final="denoise",
        dtype=torch.float64, spacing=spacing, eta=eta,
    )  # fmt: skip
    o = r.samples[:, 0]
    base = o[0]
    return float(base), float((o[1] - base) ** 2 * v0 + ((o[2:] - base) ** 2).sum()), r.nfe


def _continuous_sde(methods, steps, spacing) -> list[OrderResult]:
    sch = ContinuousSchedule()
    m, s = 0.3, 0.5
    model = ExactMixtureModel(GaussianMixture.gaussian(m, s, 1), sch)
    g1 = float(sch.gamma(1.0))
    std_exact = math.sqrt(g1**2 * s**4 / (g1**2 * s**2 + g1 * (1 - g1)))  # law of x̂(μ_1, 1)
    out = []
    for meth in methods:
        sp = "time" if meth == "bfn" else spacing
        errs, nfes = [], []
        for n in steps:
            mean, var, nfe = _gaussian_moments(model, sch, meth, n, sp, 0.01, m, s)
            errs.append(abs(mean - m) + abs(math.sqrt(var) - std_exact))
            nfes.append(nfe)
        info = CONTINUOUS_METHODS[meth]
        out.append(
            OrderResult(
                "continuous",
                meth,
                info.order,
                fit_order(steps, errs),
                "weak (exact moments, 1-D Gaussian)",
                list(steps),
                nfes,
                errs,
            )
        )
    return out


def _discrete_toy(length: int, num_classes: int, beta_1: float, concentration: float = 0.3):
    joint = CategoricalJoint.random(num_classes, length, concentration=concentration, seed=0)
    return joint, DiscreteSchedule(num_classes, beta_1=beta_1), ExactCategoricalModel(joint)


def _exact_latents(joint, sch, batch, eta, g) -> torch.Tensor:
    x = joint.sample(batch, g)
    return sch.sample_z(x, torch.full((batch,), eta, dtype=torch.float64), g, dtype=torch.float64)


def _discrete_ode(methods, steps, batch, spacing, seed) -> list[OrderResult]:
    joint, sch, model = _discrete_toy(2, 4, 3.0)
    eta = 1e-3
    g = torch.Generator().manual_seed(seed)
    z0 = _exact_latents(joint, sch, batch, eta, g)
    shape, k = (batch, joint.length), joint.num_classes
    kw = dict(schedule=sch, z_init=z0, final="state", dtype=torch.float64, spacing=spacing, eta=eta)
    ref = sample_discrete(model, shape, k, 32 * max(steps) + 512, "solver2", **kw).probs
    out = []
    for m in methods:
        errs, nfes = [], []
        # ODE Euler steps z/s explicitly: from s = η its first step is unstable until N ≫ 1/η, so it is
        # measured at 8× the steps (still first order; the exponential integrators have no such limit).
        m_steps = [8 * n for n in steps] if m == "ode_euler" else list(steps)
        for n in m_steps:
            r = sample_discrete(model, shape, k, n, m, **kw)
            errs.append(float((r.probs - ref).abs().sum(-1).mean()))
            nfes.append(r.nfe)
        info = DISCRETE_METHODS[m]
        out.append(
            OrderResult(
                "discrete", m, info.order, fit_order(steps, errs), "pathwise L1", list(steps), nfes, errs
            )
        )
    return out


def _discrete_sde(methods, steps, batch, ref_steps, seed) -> list[OrderResult]:
    joint, sch, model = _discrete_toy(1, 3, 3.0, concentration=1.0)
    eta = 1e-3
    k = joint.num_classes
    g = torch.Generator().manual_seed(seed)
    z0 = _exact_latents(joint, sch, batch, eta, g)
    shape = (batch, joint.length)
    fine = time_grid(sch, ref_steps, eta, "time")
    if ref_steps % max(steps) or any(ref_steps % n for n in steps):
        raise ValueError("ref_steps must be a multiple of every step count")
    path = brownian_noise(fine, (*shape, k), g)
    kw = dict(schedule=sch, z_init=z0, final="denoise", dtype=torch.float64, eta=eta)
    out = []
    for m in methods:
        ref = sample_discrete(model, shape, k, ref_steps, m, noise_sampler=path(fine), **kw).probs.mean(0)
        errs, nfes = [], []
        for n in steps:
            r = sample_discrete(
                model, shape, k, n, m, noise_sampler=path(time_grid(sch, n, eta, "time")), **kw
            )
            errs.append(float((r.probs.mean(0) - ref).abs().sum()))
            nfes.append(r.nfe)
        info = DISCRETE_METHODS[m]
        out.append(
            OrderResult(
                "discrete",
                m,
                info.order,
                fit_order(steps, errs),
                "weak (coupled Monte Carlo)",
                list(steps),
                nfes,
                errs,
                {"batch": batch, "ref_steps": ref_steps},
            )
        )
    return out


def _discrete_bfn(steps, batch, seed) -> OrderResult:
    joint, sch, model = _discrete_toy(2, 3, 3.0, concentration=1.0)
    p = joint.marginals()
    errs, nfes = [], []
    for n in steps:
        g = torch.Generator().manual_seed(seed + n)
        r = sample_discrete(
            model, (batch, joint.length), joint.num_classes, n, "bfn", g, schedule=sch, dtype=torch.float64
        )
        errs.append(float((r.probs.mean(0) - p).abs().sum()))
        nfes.append(r.nfe)
    stderr = float(r.probs.std(0).sum() / math.sqrt(batch))
    return OrderResult(
        "discrete",
        "bfn",
        1,
        fit_order(steps, errs),
        "weak (Monte Carlo vs exact marginals)",
        list(steps),
        nfes,
        errs,
        {"batch": batch, "mc_stderr": stderr},
    )


# (steps, batch[, reference steps]) per group; "quick" is the test suite's setting.
SETTINGS = {
    "quick": {
        "continuous_ode": ([10, 20, 40], 16),
        "continuous_sde": ([20, 40, 80],),
        "discrete_ode": ([10, 20, 40], 16),
        "discrete_sde": ([2, 4, 8], 5000, 64),
        "discrete_bfn": None,  # needs ~10^6 Monte Carlo samples: full setting only
    },
    "full": {
        "continuous_ode": ([10, 20, 40, 80], 64),
        "continuous_sde": ([20, 40, 80, 160, 320],),
        "discrete_ode": ([10, 20, 40, 80], 64),
        "discrete_sde": ([8, 16, 32, 64], 100000, 512),
        "discrete_bfn": ([4, 8, 16, 32], 400000),
    },
}


def run_order_check(
    *,
    data: Sequence[str] = ("continuous", "discrete"),
    methods: Sequence[str] | None = None,
    quick: bool = False,
    spacing: Spacing = "logsnr",
    seed: int = 0,
) -> list[OrderResult]:
    """Measure the order of every method (or ``methods``) for ``data``. ``quick`` shrinks batches and step
    ranges (the test suite's setting, seconds); the full setting takes a few minutes on a CPU."""
    cfg = SETTINGS["quick" if quick else "full"]
    results: list[OrderResult] = []
    if "continuous" in data:
        names = [m for m in CONTINUOUS_METHODS if methods is None or m in methods]
        ode = [m for m in names if not CONTINUOUS_METHODS[m].stochastic]
        sde = [m for m in names if CONTINUOUS_METHODS[m].stochastic]
        if ode:
            results += _continuous_ode(ode, *cfg["continuous_ode"], spacing, seed)
        if sde:
            results += _continuous_sde(sde, *cfg["continuous_sde"], spacing)
    if "discrete" in data:
        names = [m for m in DISCRETE_METHODS if methods is None or m in methods]
        ode = [m for m in names if not DISCRETE_METHODS[m].stochastic]
        sde = [m for m in names if DISCRETE_METHODS[m].stochastic and m != "bfn"]
        if ode:
            results += _discrete_ode(ode, *cfg["discrete_ode"], "time", seed)
        if sde:
            results += _discrete_sde(sde, *cfg["discrete_sde"], seed)
        if "bfn" in names and cfg["discrete_bfn"] is None:
            note = (
                "not measured in the quick setting: its weak error needs ~10^6 Monte Carlo samples; it equals "
                "SDE-Solver1 with sampled predictions exactly (tested), a first-order method"
            )
            results.append(
                OrderResult("discrete", "bfn", 1, None, "weak (Monte Carlo)", [], [], [], {"note": note})
            )
        elif "bfn" in names:
            results.append(_discrete_bfn(*cfg["discrete_bfn"], seed))
    return results


def plot_orders(results: Sequence[OrderResult], path: str | Path) -> Path:
    """Error vs NFE on log-log axes, one panel per data type, the measured order in each label."""
    kinds = [d for d in ("continuous", "discrete") if any(r.data == d for r in results)]
    fig, axes = new_figure(1, len(kinds), size=(5.2 * len(kinds), 4.0))
    for ax, d in zip([axes] if len(kinds) == 1 else list(axes), kinds):
        for r in results:
            if r.data == d and r.order is not None:
                ax.loglog(r.nfe, r.errors, marker="o", ms=3, label=f"{r.method} ({r.order:.2f})")
        ax.set_xlabel("NFE")
        ax.set_ylabel("error vs reference")
        ax.set_title(f"{d}: convergence (measured order)", fontsize=9)
        ax.legend(fontsize=7)
    return save_figure(fig, path)
