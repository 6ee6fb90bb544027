"""Frames in and out: a folder of images, a GIF, or (``pip install 'posecrafter[video]'``) an mp4/webm/mov clip;
GIF, MP4 and PNG strips out. Frames are (F, H, W, 3) uint8."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

__all__ = ["VideoError", "read_video", "resize_frames", "write_gif", "write_mp4", "write_strip"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
CLIP_SUFFIXES = {".mp4", ".webm", ".mov", ".mkv", ".avi"}


class VideoError(ValueError):
    """A training video that is missing or does not decode (one line; the CLI exits with code 2)."""


def _rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


def read_video(path: str | os.PathLike[str], max_frames: int | None = None) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise VideoError(f"{p}: no such video file or frame folder")
    try:
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise VideoError(f"{p}: no image files (png/jpg/webp/bmp) in this folder")
            frames = [_rgb(Image.open(f)) for f in files[:max_frames]]
        elif p.suffix.lower() in CLIP_SUFFIXES:
            try:
                import av
            except ImportError as exc:
                raise ImportError(
                    f"reading {p.suffix} clips needs PyAV: pip install 'posecrafter[video]'"
                ) from exc
            with av.open(str(p)) as box:
                frames = []
                for fr in box.decode(video=0):
                    frames.append(fr.to_ndarray(format="rgb24"))
                    if max_frames is not None and len(frames) >= max_frames:
                        break
        else:
            with Image.open(p) as im:
                frames = [_rgb(f) for f in ImageSequence.Iterator(im)][:max_frames]
    except VideoError:
        raise
    except ImportError:
        raise
    except Exception as exc:  # PIL/av raise many types for a corrupt file
        raise VideoError(
            f"{p}: could not decode ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    if not frames:
        raise VideoError(f"{p}: no frames decoded")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise VideoError(f"{p}: frames differ in size {sorted(shapes)[:2]}")
    return np.stack(frames)


def resize_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BICUBIC)) for f in frames])


def write_gif(frames: np.ndarray, path: str | os.PathLike[str], fps: float = 8.0) -> Path:
    from gen_common.atomic import atomic_path

    p = Path(path)
    imgs = [Image.fromarray(f) for f in frames]
    with atomic_path(p) as tmp:
        imgs[0].save(
            tmp, format="GIF", save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0
        )
    return p


def write_mp4(frames: np.ndarray, path: str | os.PathLike[str], fps: int = 8) -> Path:
    try:
        import av
    except ImportError as exc:
        raise ImportError("writing mp4 needs PyAV: pip install 'posecrafter[video]'") from exc
    from gen_common.atomic import atomic_path

    p = Path(path)
    h, w = frames.shape[1:3]
    with atomic_path(p) as tmp, av.open(str(tmp), mode="w", format="mp4") as box:
        stream = box.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        for f in frames:
            for pkt in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: h - h % 2, : w - w % 2]), format="rgb24")
            ):
                box.mux(pkt)
        for pkt in stream.encode():
            box.mux(pkt)
    return p


def write_strip(rows: Sequence[np.ndarray], path: str | os.PathLike[str], gap: int = 2) -> Path:
    """A PNG of one row per (F, H, W, 3) array (e.g. poses, training frames, generated frames)."""
    from gen_common.atomic import atomic_path

    h = max(r.shape[1] for r in rows)
    w = max(r.shape[0] * (r.shape[2] + gap) for r in rows)
    canvas = np.full((len(rows) * (h + gap), w, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, f in enumerate(r):
            y, x = i * (h + gap), j * (r.shape[2] + gap)
            canvas[y : y + f.shape[0], x : x + f.shape[1]] = f
    p = Path(path)
    with atomic_path(p) as tmp:
        Image.fromarray(canvas).save(tmp, format="PNG")
    return p
