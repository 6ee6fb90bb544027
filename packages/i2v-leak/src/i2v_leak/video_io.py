"""Reading clips (GIF, folders of frames, and mp4/webm/mov/avi with the ``video`` extra), writing GIFs and frame
strips, and synthetic moving-shape clips so that everything runs offline.

Frames travel as float tensors (F, 3, H, W): in [−1, 1] for VAEs (`iter_video_clips`), in [0, 1] for metrics and
files (what diffusers pipelines return with ``output_type="pt"``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "iter_video_clips",
    "list_videos",
    "load_image",
    "read_video",
    "save_gif",
    "save_strip",
    "synthetic_clips",
    "synthetic_image",
    "to_pil_frames",
]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".avi", ".mkv"}


def list_videos(folder: str | os.PathLike[str]) -> list[Path]:
    """Clips in ``folder``, sorted: GIFs, video files, and sub-folders holding image frames."""
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"no such folder of videos: {d}")
    out = []
    for p in sorted(d.iterdir()):
        if (p.is_file() and (p.suffix.lower() == ".gif" or p.suffix.lower() in VIDEO_SUFFIXES)) or (
            p.is_dir() and any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir())
        ):
            out.append(p)
    return out


def _read_av(path: Path) -> np.ndarray:
    try:
        import av
    except ImportError as exc:
        raise ImportError(f'reading {path.suffix} files needs PyAV: pip install "i2v-leak[video]"') from exc
    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except av.error.FFmpegError as exc:
        raise ValueError(f"cannot decode {path} ({type(exc).__name__}: {exc})") from exc
    if not frames:
        raise ValueError(f"{path} has no video frames")
    return np.stack(frames)


def _open_rgb_frames(path: Path, *, all_frames: bool = False) -> list[np.ndarray]:
    """RGB frames of an image file (every frame of a GIF with ``all_frames``); a file PIL cannot read is a
    ValueError that names it, not a traceback."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            frames = ImageSequence.Iterator(im) if all_frames else [im]
            out = [np.asarray(fr.convert("RGB")) for fr in frames]
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read {path} as an image ({type(exc).__name__}: {exc})") from exc
    if len({a.shape for a in out}) > 1:
        raise ValueError(f"{path}: frames of different sizes")
    return out


def read_video(path: str | os.PathLike[str]) -> torch.Tensor:
    """All frames of a clip as uint8 (F, 3, H, W): a GIF, a folder of images (sorted by name), or a video file."""
    p = Path(path)
    if p.is_dir():
        files = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{p} holds no image frames ({sorted(IMAGE_SUFFIXES)})")
        frames = [_open_rgb_frames(f)[0] for f in files]
        if len({a.shape for a in frames}) > 1:
            raise ValueError(f"the frames in {p} have different sizes")
        arr = np.stack(frames)
    elif not p.is_file():
        raise FileNotFoundError(f"no such video: {p}")
    elif p.suffix.lower() == ".gif":
        arr = np.stack(_open_rgb_frames(p, all_frames=True))
    elif p.suffix.lower() in VIDEO_SUFFIXES:
        arr = _read_av(p)
    else:
        raise ValueError(
            f"unsupported video {p.name}: use GIF, a folder of frames, or {sorted(VIDEO_SUFFIXES)}"
        )
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def _resize_crop(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize float frames (F, 3, h, w) so they cover height×width, then centre-crop (keeps the aspect ratio)."""
    h, w = frames.shape[-2:]
    scale = max(height / h, width / w)
    nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
    if (nh, nw) != (h, w):
        frames = F.interpolate(frames, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = (nh - height) // 2, (nw - width) // 2
    return frames[..., top : top + height, left : left + width]


def iter_video_clips(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    height: int,
    width: int,
    num_frames: int,
    stride: int = 1,
    generator: torch.Generator | None = None,
    skipped: list[Path] | None = None,
) -> Iterator[torch.Tensor]:
    """Clips (F, 3, H, W) in [−1, 1] from a folder (or a list of paths): ``num_frames`` frames every ``stride``-th
    frame from a start drawn with ``generator`` (the first frame when None), resized and centre-cropped to
    height×width. Clips too short are skipped (and appended to ``skipped`` when given)."""
    paths = list_videos(source) if isinstance(source, (str, os.PathLike)) else [Path(p) for p in source]
    if not paths:
        raise ValueError(f"no clips found in {source}: expected GIFs, video files or folders of frames")
    need = (num_frames - 1) * stride + 1
    for p in paths:
        frames = read_video(p)
        if frames.shape[0] < need:
            if skipped is not None:
                skipped.append(p)
            continue
        hi = frames.shape[0] - need
        start = (
            0 if generator is None or hi == 0 else int(torch.randint(0, hi + 1, (1,), generator=generator))
        )
        clip = frames[start : start + need : stride].float() / 127.5 - 1.0
        yield _resize_crop(clip, height, width)


def load_image(path: str | os.PathLike[str], height: int, width: int):  # -> PIL.Image.Image
    """An RGB image resized and centre-cropped to height×width (PIL), ready for a pipeline."""
    from PIL import Image

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such image: {p}")
    arr = torch.from_numpy(np.array(_open_rgb_frames(p)[0])).permute(2, 0, 1)[None].float() / 255.0
    out = _resize_crop(arr, height, width)[0].clamp(0, 1)
    return Image.fromarray((out.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def to_pil_frames(video: torch.Tensor) -> list:
    """(F, 3, H, W) in [0, 1] → PIL images."""
    from PIL import Image

    arr = (
        (video.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
    )
    return [Image.fromarray(a) for a in arr]


def save_gif(video: torch.Tensor, path: str | os.PathLike[str], fps: float = 8.0) -> Path:
    """Write a clip (F, 3, H, W) in [0, 1] as a looping GIF (atomically)."""
    from gen_common.atomic import atomic_path

    frames = to_pil_frames(video)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(p) as tmp:
        frames[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=frames[1:],
            duration=max(1, round(1000 / fps)),
            loop=0,
        )
    return p


def save_strip(
    rows: Sequence[tuple[str, torch.Tensor]], path: str | os.PathLike[str], title: str = ""
) -> Path:
    """A PNG with one labelled row of frames per clip (each (F, 3, H, W) in [0, 1])."""
    from gen_common.plotting import new_figure, save_figure

    n_rows = len(rows)
    n_cols = max(v.shape[0] for _, v in rows)
    fig, axes = new_figure(n_rows, n_cols, size=(max(4.0, 1.4 * n_cols + 1.2), 1.5 * n_rows + 0.5))
    axes = np.asarray(axes).reshape(n_rows, n_cols)
    for r, (label, video) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < video.shape[0]:
                ax.imshow(video[c].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy())
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            if r == 0:
                ax.set_title(f"frame {c}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def synthetic_clips(
    n: int, num_frames: int, height: int, width: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``n`` clips (n, F, 3, H, W) in [−1, 1]: a coloured square moving at a random velocity over a smooth
    two-colour gradient. Cheap, deterministic under a generator, and with real motion for the metrics."""
    g = generator
    ys = torch.linspace(0, 1, height)[:, None].expand(height, width)
    xs = torch.linspace(0, 1, width)[None, :].expand(height, width)
    c0, c1, sq = (torch.rand(n, 3, 1, 1, generator=g) for _ in range(3))
    angle = torch.rand(n, generator=g) * 2 * torch.pi
    mix = (0.5 * (xs * torch.cos(angle)[:, None, None] + ys * torch.sin(angle)[:, None, None]) + 0.5).clamp(
        0, 1
    )
    bg = c0 * (1 - mix[:, None]) + c1 * mix[:, None]  # (n, 3, H, W)
    size = 0.2 + 0.15 * torch.rand(n, generator=g)
    pos = 0.2 + 0.4 * torch.rand(n, 2, generator=g)
    vel = (torch.rand(n, 2, generator=g) - 0.5) * 0.25
    t = torch.arange(num_frames, dtype=torch.float32)
    cy = (pos[:, 0:1] + vel[:, 0:1] * t).remainder(1.0)  # (n, F)
    cx = (pos[:, 1:2] + vel[:, 1:2] * t).remainder(1.0)
    inside = ((ys[None, None] - cy[..., None, None]).abs() < size[:, None, None, None] / 2) & (
        (xs[None, None] - cx[..., None, None]).abs() < size[:, None, None, None] / 2
    )  # (n, F, H, W)
    m = inside[:, :, None].float()
    video = bg[:, None] * (1 - m) + sq[:, None] * m
    return video * 2 - 1


def synthetic_image(height: int, width: int, seed: int = 0):  # -> PIL.Image.Image
    """The first frame of a synthetic clip, as a PIL image (an offline stand-in for a user's photo)."""
    clip = synthetic_clips(1, 1, height, width, torch.Generator().manual_seed(seed))[0]
    return to_pil_frames((clip + 1) / 2)[0]
