"""PNG figures of the experiments (matplotlib without pyplot state, via gen_common.plotting)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from gen_common.plotting import new_figure, save_figure

__all__ = ["plot_bars", "plot_curves", "plot_images", "plot_matrix", "plot_spectra"]


def plot_matrix(
    matrix: Sequence[Sequence[float]],
    row_names: Sequence[str],
    col_names: Sequence[str],
    path: str | Path,
    *,
    title: str,
    xlabel: str = "",
    ylabel: str = "",
    vmin: float = 0.0,
    vmax: float = 1.0,
    fmt: str = ".2f",
) -> Path:
    m = torch.tensor([[float("nan") if v is None else float(v) for v in row] for row in matrix])
    k = max(len(row_names), len(col_names))
    fig, ax = new_figure(size=(1.2 + 0.9 * k, 1.0 + 0.8 * k))
    im = ax.imshow(m.numpy(), vmin=vmin, vmax=vmax, cmap="viridis")
    ax.set_xticks(range(len(col_names)), col_names, rotation=45, ha="right")
    ax.set_yticks(range(len(row_names)), row_names)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            v = float(m[i, j])
            if not math.isnan(v):
                ax.text(
                    j,
                    i,
                    format(v, fmt),
                    ha="center",
                    va="center",
                    color="w" if v < (vmin + vmax) / 2 else "k",
                )
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return save_figure(fig, path)


def plot_curves(
    x: Sequence[float],
    curves: dict[str, Sequence[float]],
    path: str | Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str = "test accuracy",
    hlines: dict[str, float] | None = None,
    logx: bool = False,
    ylim: tuple[float, float] | None = (0.0, 1.02),
) -> Path:
    fig, ax = new_figure()
    for name, ys in curves.items():
        ax.plot(list(x), list(ys), marker="o", label=name)
    for name, y in (hlines or {}).items():
        ax.axhline(
            y, linestyle="--", linewidth=1, color="gray" if name.startswith("chance") else None, label=name
        )
    if logx:
        ax.set_xscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_bars(
    labels: Sequence[str],
    values: Sequence[float],
    path: str | Path,
    *,
    title: str,
    ylabel: str = "test accuracy",
    chance: float | None = None,
) -> Path:
    fig, ax = new_figure()
    ax.bar(range(len(values)), list(values), color="tab:blue")
    ax.set_xticks(range(len(labels)), list(labels), rotation=30, ha="right")
    for i, v in enumerate(values):
        ax.text(i, v + 0.01, f"{v:.2f}", ha="center", fontsize=8)
    if chance is not None:
        ax.axhline(chance, linestyle="--", color="gray", linewidth=1, label="chance")
        ax.legend(fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return save_figure(fig, path)


def plot_spectra(
    radii: torch.Tensor,
    spectra: dict[str, torch.Tensor],
    path: str | Path,
    *,
    title: str = "radial power spectrum",
) -> Path:
    # The DC bin (radius 0) is left out: the callers remove each image's mean, which leaves it at rounding
    # level, and on a log axis it would squash the rest of the curve.
    keep = radii > 0
    fig, ax = new_figure()
    for name, p in spectra.items():
        ax.semilogy(radii[keep].cpu().numpy(), p[keep].clamp_min(1e-20).cpu().numpy(), label=name)
    ax.set_xlabel("radius (cycles per image)")
    ax.set_ylabel("mean power per frequency bin")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_images(rows: dict[str, torch.Tensor], path: str | Path, *, title: str = "") -> Path:
    """One row of images per entry (N, C, H, W); each image is min-max scaled for display."""
    n = max(v.shape[0] for v in rows.values())
    fig, axes = new_figure(len(rows), n, size=(1.3 * n + 1.2, 1.3 * len(rows) + 0.4))
    axes = np.asarray(axes, dtype=object).reshape(len(rows), n)
    for r, (name, imgs) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < imgs.shape[0]:
                im = imgs[c].detach().float().cpu()
                lo, hi = float(im.min()), float(im.max())
                im = (im - lo) / (hi - lo) if hi > lo else im * 0
                ax.imshow(im.permute(1, 2, 0).numpy() if im.shape[0] == 3 else im[0].numpy(), cmap="gray")
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
