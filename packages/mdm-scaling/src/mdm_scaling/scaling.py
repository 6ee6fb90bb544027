"""IsoFLOP analysis (Sec. 3.1, Fig. 1; Hoffmann et al.'s "approach 2"): for each compute budget C, fit a parabola
of the loss in log N through the runs of that budget, take its vertex as (N*(C), L*(C)), then fit the power laws

    L*(C) = A · C^(−alpha)        N*(C) = k · C^beta

by least squares in log–log space. The compute gap between two archs is the factor g with
L_b*(g·C) = L_a*(C): how much more compute arch b needs to reach arch a's optimal loss.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "IsoFLOPPoint",
    "PowerLaw",
    "ScalingFit",
    "compute_gap",
    "fit_scaling_laws",
    "group_budgets",
    "isoflop_minimum",
    "plot_frontier",
    "plot_isoflops",
    "read_runs",
    "write_runs",
]

REQUIRED_COLUMNS = ("arch", "params", "tokens", "flops", "loss")


@dataclass(frozen=True)
class PowerLaw:
    """y = coef · x^exponent."""

    coef: float
    exponent: float

    def __call__(self, x: Any) -> Any:
        return self.coef * np.asarray(x, dtype=float) ** self.exponent


@dataclass(frozen=True)
class IsoFLOPPoint:
    budget: float
    n_opt: float
    loss_opt: float
    curvature: float  # d²L/d(ln N)²: > 0 when the runs bracket a minimum
    n_runs: int
    bracketed: bool  # vertex inside the sampled size range


@dataclass
class ScalingFit:
    arch: str
    A: float
    alpha: float
    k: float
    beta: float
    points: list[IsoFLOPPoint] = field(default_factory=list)

    @property
    def loss_law(self) -> PowerLaw:
        return PowerLaw(self.A, -self.alpha)

    @property
    def size_law(self) -> PowerLaw:
        return PowerLaw(self.k, self.beta)

    @property
    def bracketed(self) -> int:
        """How many IsoFLOP minima lie inside their curve's sizes; the others are the best run of an unbracketed
        curve, which biases N*(C) (and beta) towards the edge of the size grid."""
        return sum(p.bracketed for p in self.points)

    def to_dict(self) -> dict[str, Any]:
        return {
            "A": self.A,
            "alpha": self.alpha,
            "k": self.k,
            "beta": self.beta,
            "bracketed": self.bracketed,
            "budgets": len(self.points),
            "points": [asdict(p) for p in self.points],
        }


def read_runs(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a sweep CSV (``arch,params,tokens,flops,loss`` at least; ``budget`` optional) with numbers parsed."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"runs file not found: {p}")
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{p} lacks column(s) {missing}; a runs CSV needs at least {', '.join(REQUIRED_COLUMNS)}"
            )
        rows = []
        for i, row in enumerate(reader, start=2):
            try:
                parsed = dict(row)
                for c in ("params", "tokens", "flops", "loss", "budget"):
                    if row.get(c) not in (None, ""):
                        parsed[c] = float(row[c])
            except ValueError as exc:
                raise ValueError(f"{p} line {i}: {exc}") from exc
            if not math.isfinite(parsed["loss"]):
                continue  # a diverged run carries no information about the minimum
            bad = [c for c in ("params", "flops", "loss") if not parsed[c] > 0]
            if bad:
                raise ValueError(
                    f"{p} line {i}: {', '.join(bad)} must be positive (the fits are in log space)"
                )
            rows.append(parsed)
    if not rows:
        raise ValueError(f"{p} holds no runs with a finite loss")
    return rows


def write_runs(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    from gen_common.atomic import atomic_path

    rows = list(rows)
    cols = list(REQUIRED_COLUMNS) + sorted({k for r in rows for k in r} - set(REQUIRED_COLUMNS))
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow(dict(r))
    return Path(path)


def group_budgets(rows: Sequence[Mapping[str, Any]], tolerance: float = 1.25) -> dict[float, list[Mapping]]:
    """Group runs by budget: the ``budget`` column when present, else FLOPs within a factor ``tolerance``
    (a rounded step count makes a run's FLOPs differ slightly from its nominal budget)."""
    if all(r.get("budget") not in (None, "") for r in rows):
        out: dict[float, list[Mapping]] = {}
        for r in rows:
            out.setdefault(float(r["budget"]), []).append(r)
        return dict(sorted(out.items()))
    ordered = sorted(rows, key=lambda r: r["flops"])
    groups: list[list[Mapping]] = []
    for r in ordered:
        if groups and r["flops"] <= groups[-1][0]["flops"] * tolerance:
            groups[-1].append(r)
        else:
            groups.append([r])
    return {float(np.exp(np.mean([np.log(r["flops"]) for r in g]))): g for g in groups}


def isoflop_minimum(params: Sequence[float], losses: Sequence[float], budget: float) -> IsoFLOPPoint:
    """Vertex of the least-squares parabola L(ln N) through one IsoFLOP curve (needs >= 3 sizes).

    When the runs do not bracket a minimum (no positive curvature, or the vertex outside the sampled sizes) the
    parabola would extrapolate; the best run is returned instead, flagged ``bracketed=False``.
    """
    x = np.log(np.asarray(params, dtype=float))
    y = np.asarray(losses, dtype=float)
    if len(np.unique(x)) < 3:
        raise ValueError(f"budget {budget:.3g}: an IsoFLOP curve needs at least 3 distinct sizes")
    a, b, c = np.polyfit(x, y, 2)
    if a > 0:
        xv = -b / (2 * a)
        if x.min() <= xv <= x.max():
            return IsoFLOPPoint(
                budget, float(np.exp(xv)), float(c - b * b / (4 * a)), float(2 * a), len(x), True
            )
    i = int(np.argmin(y))
    return IsoFLOPPoint(budget, float(np.exp(x[i])), float(y[i]), float(2 * a), len(x), False)


def _loglog_fit(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    slope, icpt = np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)
    return float(np.exp(icpt)), float(slope)


def fit_scaling_laws(rows: Sequence[Mapping[str, Any]]) -> dict[str, ScalingFit]:
    """Per arch: IsoFLOP minima, then L* = A·C^(−alpha) and N* = k·C^beta (needs >= 2 budgets)."""
    by_arch: dict[str, list[Mapping]] = {}
    for r in rows:
        if not (r["params"] > 0 and r["flops"] > 0 and r["loss"] > 0):
            raise ValueError(f"params, flops and loss must be positive (log-space fits); got run {dict(r)}")
        by_arch.setdefault(str(r["arch"]), []).append(r)
    fits = {}
    for arch, rs in sorted(by_arch.items()):
        points = []
        for budget, grp in group_budgets(rs).items():
            if len({g["params"] for g in grp}) < 3:
                continue
            points.append(isoflop_minimum([g["params"] for g in grp], [g["loss"] for g in grp], budget))
        if len(points) < 2:
            raise ValueError(
                f"arch {arch!r}: need at least 2 budgets with >= 3 model sizes each, got {len(points)}"
            )
        cs = [p.budget for p in points]
        A, neg_alpha = _loglog_fit(cs, [p.loss_opt for p in points])
        k, beta = _loglog_fit(cs, [p.n_opt for p in points])
        fits[arch] = ScalingFit(arch, A, -neg_alpha, k, beta, points)
    return fits


def compute_gap(reference: ScalingFit, other: ScalingFit, budget: float) -> float:
    """g such that ``other`` reaches ``reference``'s optimal loss at budget C with g·C FLOPs."""
    target = reference.A * budget ** (-reference.alpha)
    return float((other.A / target) ** (1.0 / other.alpha) / budget)


def _arch_colors(archs: Iterable[str]) -> dict[str, str]:
    palette = ["tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange"]
    return {a: palette[i % len(palette)] for i, a in enumerate(sorted(archs))}


def plot_isoflops(
    rows: Sequence[Mapping[str, Any]], fits: Mapping[str, ScalingFit], path: str | os.PathLike[str]
) -> Path:
    """Loss vs N per budget (one panel per arch) with the fitted parabolas and their vertices (Fig. 1 left)."""
    from gen_common.plotting import new_figure, save_figure

    archs = sorted(fits)
    fig, axes = new_figure(1, len(archs), size=(5.0 * len(archs), 3.8))
    axes = np.atleast_1d(axes)
    import matplotlib as mpl

    for ax, arch in zip(axes, archs):
        rs = [r for r in rows if str(r["arch"]) == arch]
        groups = group_budgets(rs)
        cmap = mpl.colormaps["viridis"]
        for j, (budget, grp) in enumerate(groups.items()):
            col = cmap(j / max(1, len(groups) - 1))
            n = np.array([g["params"] for g in grp])
            y = np.array([g["loss"] for g in grp])
            ax.scatter(n, y, color=col, s=14, label=f"C={budget:.2g}")
            if len(np.unique(n)) >= 3:
                a, b, c = np.polyfit(np.log(n), y, 2)
                xs = np.linspace(np.log(n.min()), np.log(n.max()), 50)
                ax.plot(np.exp(xs), a * xs**2 + b * xs + c, color=col, lw=1)
        pts = fits[arch].points
        ax.scatter([p.n_opt for p in pts], [p.loss_opt for p in pts], marker="*", color="k", s=60, zorder=5)
        ax.set_xscale("log")
        ax.set_xlabel("non-embedding parameters N")
        ax.set_ylabel("validation loss (nats/token)")
        ax.set_title(f"IsoFLOP curves: {arch}")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_frontier(fits: Mapping[str, ScalingFit], path: str | os.PathLike[str]) -> Path:
    """The fitted L*(C) and N*(C) laws with the IsoFLOP minima (Fig. 1 middle/right)."""
    from gen_common.plotting import new_figure, save_figure

    fig, (ax1, ax2) = new_figure(1, 2, size=(10.0, 3.8))
    colors = _arch_colors(fits)
    for arch, f in sorted(fits.items()):
        cs = np.array([p.budget for p in f.points])
        grid = np.geomspace(cs.min() / 2, cs.max() * 2, 50)
        col = colors[arch]
        ax1.scatter(cs, [p.loss_opt for p in f.points], color=col)
        ax1.plot(grid, f.loss_law(grid), color=col, label=f"{arch}: {f.A:.3g}·C^-{f.alpha:.3g}")
        ax2.scatter(cs, [p.n_opt for p in f.points], color=col)
        ax2.plot(grid, f.size_law(grid), color=col, label=f"{arch}: N* ∝ C^{f.beta:.3g}")
    for ax, yl in ((ax1, "optimal loss L*"), (ax2, "optimal size N*")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training FLOPs C = 6ND")
        ax.set_ylabel(yl)
        ax.legend(fontsize=8)
    ax1.set_title("compute-optimal loss")
    ax2.set_title("compute-optimal model size")
    return save_figure(fig, path)
