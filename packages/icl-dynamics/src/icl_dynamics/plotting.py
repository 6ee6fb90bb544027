"""PNG figures of the paper's experiments from run records (`icl_dynamics.sweep` JSON, or `run_one` dicts).

- ``ab_<family>_s<scale>.png``: ab over epochs for each initialisation, with the finite-T fixed point ab*
  (dashed) and its T → ∞ limit m₄/m₆ (dotted) — the paper's "dynamics of ab" figures.
- ``ratio_gaussian_s<scale>.png``: prediction/true ratio at the last test position, theory line.
- ``mse_sparse_s<scale>.png``: MSE at the last test position (log scale); the theory says it → 0.
- ``heatmap_ones_a<a0>_b<b0>.png``: Re W^{KQ} and Re W^{PV} after training on all-ones x₁.
- ``summary_ab.png``: trained ab against the closed form over all runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gen_common.plotting import new_figure, save_figure

__all__ = ["plot_records"]


def _group(records: Sequence[dict[str, Any]]) -> dict[tuple[str, float, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, float, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        spec = r["spec"]
        groups[(spec["family"], float(spec["scale"]), spec.get("grad_mask", "none"))].append(r)
    return dict(sorted(groups.items()))


def _init_label(r: dict[str, Any]) -> str:
    s = r["spec"]
    return f"$(a_0, b_0)$ = ({s['a0']:g}, {s['b0']:g})"


def _trajectory_figure(
    runs: list[dict[str, Any]],
    x_key: str,
    y_key: str,
    theory_lines: list[tuple[float, str]],
    *,
    ylabel: str,
    title: str,
    path: Path,
    log: bool = False,
) -> Path:
    """One curve per initialisation, plus horizontal theory lines (dashed: finite T, dotted: T → ∞)."""
    fig, ax = new_figure(size=(6.0, 4.0))
    for r in runs:
        ys = [float("nan") if v is None else v for v in r["history"][y_key]]
        ax.plot(r["history"][x_key], ys, lw=2, label=_init_label(r))
    for (value, label), (ls, color) in zip(theory_lines, (("--", "k"), (":", "gray"))):
        ax.axhline(value, ls=ls, color=color, lw=1.5, label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _ab_figure(family: str, scale: float, runs: list[dict[str, Any]], path: Path) -> Path:
    th = runs[0]["theory"]
    note = "" if th["assumption_holds"] else " (assumption violated)"
    lines = [
        (th["predicted_ab"], f"ab* (T={th['T']}) = {th['predicted_ab']:.4g}{note}"),
        (th["predicted_ab_limit"], f"T→∞: m₄/m₆ = {th['predicted_ab_limit']:.4g}"),
    ]
    title = f"{family} x₁, scale {scale:g}: dynamics of ab"
    return _trajectory_figure(runs, "epoch", "ab", lines, ylabel="ab", title=title, path=path)


def _test_metric_figure(
    family: str, scale: float, runs: list[dict[str, Any]], metric: str, path: Path
) -> Path:
    th = runs[0]["theory"]
    title = f"{family} x₁, scale {scale:g}"
    if metric == "ratio":
        lines = [
            (th["predicted_ratio"], f"theory (T={th['T']}) = {th['predicted_ratio']:.4g}"),
            (th["predicted_ratio_limit"], f"T→∞ = {th['predicted_ratio_limit']:.4g}"),
        ]
        ylabel = "Re(pred / true) at the last position"
        return _trajectory_figure(runs, "test_epoch", metric, lines, ylabel=ylabel, title=title, path=path)
    ylabel = "MSE at the last position (theory: → 0)"
    return _trajectory_figure(runs, "test_epoch", metric, [], ylabel=ylabel, title=title, path=path, log=True)


def _heatmap_figure(r: dict[str, Any], path: Path) -> Path:
    """Top: Re W^{KQ}, Re W^{PV} (the official figures). Bottom: the same with the two mesa diagonals blanked
    and a colour scale centred at 0, so that the off-diagonal entries that grow are visible."""
    fig, axes = new_figure(2, 2, size=(10.0, 8.0))
    d = len(r["final"]["wpv"]["real"])
    for col, (key, title) in enumerate((("wkq", "Re $W^{KQ}$"), ("wpv", "Re $W^{PV}$"))):
        mat = torch.tensor(r["final"][key]["real"], dtype=torch.float64)
        im = axes[0, col].imshow(mat.numpy(), cmap="viridis", interpolation="nearest")
        fig.colorbar(im, ax=axes[0, col], shrink=0.8)
        axes[0, col].set_title(f"{title}, init ({r['spec']['a0']:g}, {r['spec']['b0']:g})")
        off = mat.clone()
        idx = torch.arange(d)
        if key == "wkq":
            off[d + idx, idx] = float("nan")
        else:
            off[idx, idx] = float("nan")
        vmax = float(off.nan_to_num(0).abs().max()) or 1.0
        im = axes[1, col].imshow(off.numpy(), cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        fig.colorbar(im, ax=axes[1, col], shrink=0.8)
        axes[1, col].set_title(f"{title} without the mesa diagonal")
        for row in range(2):
            axes[row, col].set_xticks(range(mat.shape[1]))
            axes[row, col].set_yticks(range(mat.shape[0]))
    return save_figure(fig, path)


def _summary_figure(records: Sequence[dict[str, Any]], path: Path) -> Path:
    fig, ax = new_figure(size=(5.0, 4.5))
    style = {"gaussian": ("o", "C0"), "sparse": ("s", "C1"), "ones": ("^", "C2")}
    seen = set()
    lo, hi = float("inf"), 0.0
    for r in records:
        fam, mask = r["spec"]["family"], r["spec"].get("grad_mask", "none")
        marker, color = style.get(fam, ("x", "C3"))
        label = fam if mask == "none" else f"{fam} (masked)"
        x, y = r["summary"]["predicted_ab"], r["summary"]["ab"]
        lo, hi = min(lo, x, y), max(hi, x, y)
        face = color if mask == "none" else "none"
        ax.scatter(
            [x], [y], marker=marker, facecolors=face, edgecolors=color, label=None if label in seen else label
        )
        seen.add(label)
    if hi > 0:
        lo = max(lo, hi * 1e-3)
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="trained = predicted")
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("predicted ab* (closed form)")
    ax.set_ylabel("trained ab (last epoch)")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_records(records: Sequence[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """Write every figure the records support into ``out_dir``; returns the PNG paths."""
    if not records:
        raise ValueError("no run records to plot")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for (family, scale, mask), runs in _group(records).items():
        tag = f"{family}_s{scale:g}" + ("" if mask == "none" else f"_mask{mask}")
        title = family if mask == "none" else f"{family} (masked {mask})"
        paths.append(_ab_figure(title, scale, runs, out / f"ab_{tag}.png"))
        if any(r["history"].get("test_epoch") for r in runs):
            metric, name = ("mse_last", "mse") if family == "sparse" else ("ratio", "ratio")
            paths.append(_test_metric_figure(title, scale, runs, metric, out / f"{name}_{tag}.png"))
        if family == "ones":
            for r in runs:
                s = r["spec"]
                suffix = "" if mask == "none" else f"_mask{mask}"
                paths.append(_heatmap_figure(r, out / f"heatmap_ones_a{s['a0']:g}_b{s['b0']:g}{suffix}.png"))
    paths.append(_summary_figure(records, out / "summary_ab.png"))
    return paths
