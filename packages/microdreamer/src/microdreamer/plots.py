"""Orbit GIFs and the held-out error vs diffusion-calls plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from microdreamer.cameras import orbit_cameras
from microdreamer.loop import History

__all__ = ["orbit_frames", "plot_error_vs_calls", "save_gif"]


@torch.no_grad()
def orbit_frames(
    model, *, frames: int = 24, size: int = 128, elevation: float = 0.0, radius: float = 2.0, chunk: int = 4
):
    """uint8 [frames, size, size, 3] renders around the object (main.py save_video, fewer frames)."""
    cams = orbit_cameras(
        [elevation] * frames, [i * 360 / frames - 180 for i in range(frames)], radius, size=size
    )
    dev = model.xyz.device
    out = []
    for s in range(0, frames, chunk):
        img = model.render(cams.index(list(range(s, min(s + chunk, frames)))).to(dev)).image
        out.append((img.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu())
    return torch.cat(out).numpy()


def save_gif(frames: np.ndarray, path: str | Path, fps: int = 12) -> Path:
    from PIL import Image

    path = Path(path)
    ims = [Image.fromarray(f) for f in frames]
    tmp = path.with_name(path.name + ".tmp")
    ims[0].save(tmp, format="GIF", save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0)
    tmp.replace(path)
    return path


def plot_error_vs_calls(histories: dict[str, History], path: str | Path, *, title: str = "") -> Path:
    from gen_common.plotting import new_figure, save_figure

    fig, axes = new_figure(1, 2, size=(10, 3.8))
    for name, h in histories.items():
        axes[0].plot(h.nfe, h.error, marker="o" if len(h.nfe) < 40 else None, ms=3, label=name)
        axes[1].plot(h.seconds, h.error, label=name)
    axes[0].set_xlabel("diffusion network evaluations (CFG doubling counted)")
    axes[1].set_xlabel("seconds (evaluation excluded)")
    for ax in axes:
        ax.set_ylabel("held-out view L1")
        ax.set_yscale("log")
        ax.legend()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
