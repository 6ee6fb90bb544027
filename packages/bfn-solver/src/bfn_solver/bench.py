"""Quality vs NFE of every sampler on the exact toys, and the NFE each needs to match the original BFN sampler
at a reference step count (1000 by default): the paper's headline comparison (Xue et al., Fig. 1/3) in miniature.

Quality: sliced Wasserstein-1 distance to a fresh sample of the true 2-D mixture (continuous) and total
variation between the empirical joint of decoded ids and the true joint (discrete). Both carry a Monte Carlo
floor (the distance between two independent true samples of the same size), reported beside the curves: below
it, samplers cannot be told apart at this sample size — and BFN at 1000 steps is already below it.

`run_exact_gaussian_bench` removes that floor for continuous data: on a 1-D Gaussian every sampler is linear in
its initial state and noise, so the exact mean and standard deviation of its output follow from one batched run
with unit impulses (as in `order`), and its weak error |E x − m| + |std x − s| is known to round-off. There the
NFE a method needs to match BFN at 1000 steps is resolved exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bfn_solver.metrics import sliced_wasserstein, total_variation
from bfn_solver.sampling import (
    CONTINUOUS_METHODS,
    DISCRETE_METHODS,
    MethodInfo,
    sample_continuous,
    sample_discrete,
)
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
from bfn_solver.toy import CategoricalJoint, ExactCategoricalModel, ExactMixtureModel, GaussianMixture
from gen_common.cli import progress as progress_bar
from gen_common.plotting import new_figure, save_figure

__all__ = [
    "BenchCurves",
    "nfe_to_reach",
    "plot_curves",
    "run_exact_gaussian_bench",
    "run_quality_bench",
    "steps_for_budget",
]

DEFAULT_NFES = (5, 10, 20, 50, 100, 200, 500)
ETA = 0.01  # the official start time of the continuous solvers


@dataclass
class BenchCurves:
    data: str
    metric: str
    floor: float  # mean distance of independent true samples to the truth
    reference_method: str
    reference_steps: int
    reference_quality: float
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # method -> [(nfe, quality)]
    nfe_to_match: dict[str, float | None] = field(default_factory=dict)
    seconds: float = 0.0
    floor_std: float = 0.0  # spread of the floor over 5 independent true samples
    tolerance: float = 0.0  # matching tolerance: 2 floor_std

    reference_nfe: int = 0

    def speedups(self) -> dict[str, float | None]:
        """Reference NFE / NFE a method needs for the same quality (None: not reached in the grid)."""
        return {m: (self.reference_nfe / n if n else None) for m, n in self.nfe_to_match.items()}

    def table(self) -> tuple[list[str], list[list[Any]]]:
        nfes = sorted({n for c in self.curves.values() for n, _ in c})
        cols = ["method", *[f"NFE {n}" for n in nfes], "NFE to match", "speed-up"]
        rows = []
        sp = self.speedups()
        for m, c in self.curves.items():
            d = dict(c)
            need = self.nfe_to_match.get(m)
            rows.append(
                [m, *[d.get(n, float("nan")) for n in nfes], "—" if need is None else round(need, 1),
                 "—" if sp.get(m) is None else round(sp[m], 1)]
            )  # fmt: skip
        return cols, rows


def steps_for_budget(info: MethodInfo, nfe: int, final: str | None = None) -> int | None:
    """Steps whose network calls (with the ending ``final``, default the method's) are closest to (not above)
    ``nfe``; None if the budget is too small."""
    for steps in range(max(1, nfe // info.evals_per_step) + 1, 0, -1):
        if info.nfe(steps, final) <= nfe:  # type: ignore[arg-type]
            return steps
    return None


def nfe_to_reach(curve: Sequence[tuple[int, float]], target: float) -> float | None:
    """Smallest NFE at which a curve reaches ``target``, log-log interpolated between grid points."""
    pts = sorted(curve)
    for i, (n, q) in enumerate(pts):
        if q <= target:
            if i == 0:
                return float(n)
            n0, q0 = pts[i - 1]
            if q0 <= q or q <= 0:
                return float(n)
            frac = (math.log(q0) - math.log(target)) / (math.log(q0) - math.log(q))
            return float(math.exp(math.log(n0) + frac * (math.log(n) - math.log(n0))))
    return None


def _continuous_setup(n_samples: int, seed: int):
    mix = GaussianMixture.ring()
    sch = ContinuousSchedule()
    model = ExactMixtureModel(mix, sch)
    truth = mix.sample(n_samples, torch.Generator().manual_seed(seed + 1000))
    proj = torch.Generator().manual_seed(seed + 2000)

    def quality(x: torch.Tensor) -> float:
        return sliced_wasserstein(x, truth, generator=torch.Generator().manual_seed(seed + 2000))

    floors = [
        quality(mix.sample(n_samples, torch.Generator().manual_seed(seed + 3000 + i))) for i in range(5)
    ]
    del proj
    return model, quality, floors


def _continuous_run(model, method: str, steps: int, n: int, seed: int, device) -> tuple[int, torch.Tensor]:
    """Solvers start at t = η from the exact marginal (forward process of true samples), so that the curves
    measure discretization error only; the original sampler starts from its exact prior at t = 0."""
    g = torch.Generator().manual_seed(seed)
    x_init = None
    if method != "bfn":
        x = model.mixture.sample(n, g)
        x_init, _ = model.schedule.sample_mu(x, torch.full((n,), ETA, dtype=torch.float64), g)
    r = sample_continuous(model, (n, 2), steps, method, g, x_init=x_init, eta=ETA, device=device)
    return r.nfe, r.samples


def _discrete_setup(n_samples: int, seed: int):
    joint = CategoricalJoint.random(4, 2, concentration=0.3, seed=0)
    sch = DiscreteSchedule(4, beta_1=3.0)
    model = ExactCategoricalModel(joint)
    floors = [
        total_variation(joint.sample(n_samples, torch.Generator().manual_seed(seed + 3000 + i)), joint.probs)
        for i in range(5)
    ]
    return joint, sch, model, floors


def run_quality_bench(
    data: str = "continuous",
    *,
    methods: Sequence[str] | None = None,
    nfes: Sequence[int] = DEFAULT_NFES,
    reference_steps: int = 1000,
    n_samples: int = 10000,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool | None = False,
    on_point: Callable[[str, int, float], None] | None = None,
) -> BenchCurves:
    """Quality vs NFE for ``methods`` (default: all) on the exact toy of ``data`` ("continuous"/"discrete").

    Every method runs at each NFE budget in ``nfes`` (steps chosen so the network calls do not exceed it); the
    original sampler also runs at ``reference_steps``, and `BenchCurves.nfe_to_match` holds the NFE each method
    needs to reach that quality (log-log interpolated; None if not reached within the grid).
    """
    import time

    t0 = time.perf_counter()
    registry = CONTINUOUS_METHODS if data == "continuous" else DISCRETE_METHODS
    if data not in ("continuous", "discrete"):
        raise ValueError(f"data must be 'continuous' or 'discrete', got {data!r}")
    names = list(methods) if methods is not None else list(registry)
    unknown = [m for m in names if m not in registry]
    if unknown:
        raise ValueError(f"unknown {data} method(s) {unknown}; choose from {', '.join(registry)}")
    if data == "continuous":
        model, quality, floors = _continuous_setup(n_samples, seed)

        def run(method: str, steps: int) -> tuple[int, float]:
            nfe, x = _continuous_run(model, method, steps, n_samples, seed, device)
            return nfe, quality(x)

        metric = "sliced Wasserstein-1 to the true 2-D mixture"
    else:
        joint, sch, dmodel, floors = _discrete_setup(n_samples, seed)

        def run(method: str, steps: int) -> tuple[int, float]:
            r = sample_discrete(dmodel, (n_samples, joint.length), joint.num_classes, steps, method,
                                torch.Generator().manual_seed(seed), schedule=sch, device=device)  # fmt: skip
            return r.nfe, total_variation(r.samples.cpu(), joint.probs)

        metric = "total variation to the true joint (K=4, L=2)"
    floor, floor_std = float(np.mean(floors)), float(np.std(floors, ddof=1))
    out = BenchCurves(data, metric, floor, "bfn", reference_steps, float("nan"), floor_std=floor_std)
    jobs = [(m, n) for m in names for n in nfes]
    for m, budget in progress_bar(jobs, desc=f"bench {data}", enabled=progress):
        steps = steps_for_budget(registry[m], budget)
        if steps is None:
            continue
        nfe, q = run(m, steps)
        out.curves.setdefault(m, []).append((nfe, q))
        if on_point is not None:
            on_point(m, nfe, q)
    ref_nfe, ref_q = run("bfn", reference_steps)
    out.reference_quality = ref_q
    out.reference_nfe = ref_nfe
    # Quality estimates carry Monte Carlo noise of about floor_std: a method "matches" once it is within two
    # such standard deviations of the reference quality.
    out.tolerance = 2 * floor_std
    for m, c in out.curves.items():
        out.nfe_to_match[m] = nfe_to_reach(c, ref_q + out.tolerance)
    out.seconds = time.perf_counter() - t0
    return out


def run_exact_gaussian_bench(
    *,
    methods: Sequence[str] | None = None,
    nfes: Sequence[int] = DEFAULT_NFES,
    reference_steps: int = 1000,
    mean: float = 0.3,
    std: float = 0.5,
    spacing: str = "time",
) -> BenchCurves:
    """Exact weak error of every continuous method on the 1-D Gaussian N(mean, std²) vs NFE (no Monte Carlo),
    and the NFE each needs to reach the original BFN sampler's error at ``reference_steps``.

    The target law is that of x̂(μ_1, 1), the network output at t = 1 (all methods end with a prediction);
    the solvers start from the exact marginal at t = η (official grid: ``spacing="time"``), the original sampler
    from its prior at t = 0.
    """
    import time

    from bfn_solver.order import _gaussian_moments  # exact output moments by unit impulses

    t0 = time.perf_counter()
    names = list(methods) if methods is not None else list(CONTINUOUS_METHODS)
    unknown = [m for m in names if m not in CONTINUOUS_METHODS]
    if unknown:
        raise ValueError(
            f"unknown continuous method(s) {unknown}; choose from {', '.join(CONTINUOUS_METHODS)}"
        )
    sch = ContinuousSchedule()
    model = ExactMixtureModel(GaussianMixture.gaussian(mean, std, 1), sch)
    g1 = float(sch.gamma(1.0))
    std_out = math.sqrt(g1**2 * std**4 / (g1**2 * std**2 + g1 * (1 - g1)))  # law of x̂(μ_1, 1)

    def run(method: str, steps: int) -> tuple[int, float]:
        sp = "time" if method == "bfn" else spacing
        m, var, nfe = _gaussian_moments(model, sch, method, steps, sp, ETA, mean, std)
        return nfe, abs(m - mean) + abs(math.sqrt(var) - std_out)

    metric = f"exact weak error |E x - m| + |std x - s| on N({mean}, {std}^2)"
    out = BenchCurves("continuous_exact", metric, 0.0, "bfn", reference_steps, float("nan"))
    for m in names:
        for budget in nfes:
            steps = steps_for_budget(CONTINUOUS_METHODS[m], budget, "denoise")  # every run ends at x̂(μ_1, 1)
            if steps is not None:
                out.curves.setdefault(m, []).append(run(m, steps))
    out.reference_nfe, out.reference_quality = run("bfn", reference_steps)
    for m, c in out.curves.items():
        out.nfe_to_match[m] = nfe_to_reach(c, out.reference_quality)
    out.seconds = time.perf_counter() - t0
    return out


def plot_curves(curves: Sequence[BenchCurves], path: str | Path) -> Path:
    """One log-log panel per data type: quality vs NFE per method, the reference quality and the MC floor."""
    fig, axes = new_figure(1, len(curves), size=(5.2 * len(curves), 4.0))
    axes = np.atleast_1d(axes)
    for ax, c in zip(axes, curves):
        for m, pts in c.curves.items():
            n, q = zip(*sorted(pts))
            ax.plot(n, np.maximum(q, 1e-6), marker="o", ms=3, label=m, lw=2.2 if m == "bfn" else 1.3)
        ax.axhline(c.reference_quality, color="k", ls="--", lw=1, label=f"bfn @ {c.reference_steps} steps")
        if c.floor > 0:  # the exact bench has none
            ax.axhline(c.floor, color="grey", ls=":", lw=1, label="Monte Carlo floor")
            ax.axhspan(max(c.floor - c.floor_std, 1e-6), c.floor + c.floor_std, color="grey", alpha=0.15)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("NFE")
        ax.set_ylabel(c.metric.split(" to ")[0].split(" |")[0])
        ax.set_title(f"{c.data}: {c.metric}", fontsize=9)
        ax.legend(fontsize=7)
    return save_figure(fig, path)
