"""Input images for image-to-3D: decode, remove the background (RGBA alpha, a user hook, rembg, or a border-colour
matte), composite on white and resize (main.py load_input), with one-line errors for bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

__all__ = ["border_matte", "load_image"]


def border_matte(rgb: np.ndarray, tolerance: float = 0.12) -> np.ndarray:
    """Alpha for an object on a plain background: pixels whose colour is within ``tolerance`` of the median border
    colour are background. A fallback when neither an alpha channel nor a background remover is available."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    bg = np.median(border, axis=0)
    dist = np.abs(rgb - bg).max(-1)
    return (dist > tolerance).astype(np.float32)


def load_image(
    path: str | Path,
    size: int = 256,
    *,
    remove_background: Callable[[np.ndarray], np.ndarray] | str | None = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (RGB on white [1, 3, size, size], mask [1, 1, size, size]) in [0, 1].

    ``remove_background``: a function RGB uint8 [H, W, 3] → alpha in [0, 1] [H, W]; "auto" uses the image's alpha
    channel if it has one, else :func:`border_matte`; None keeps the whole frame. The release runs rembg on RGB
    inputs: pass ``lambda rgb: rembg.remove(rgb)[..., 3] / 255`` to do the same.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input image {path} does not exist")
    try:
        with Image.open(path) as im:
            im.load()
            img = im.convert("RGBA") if im.mode in ("RGBA", "LA", "P") else im.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(
            f"cannot decode {path} as an image ({exc.__class__.__name__}); give a PNG or JPEG"
        ) from exc
    arr = np.asarray(img)
    if arr.shape[-1] == 4 and remove_background == "auto":
        rgb, alpha = arr[..., :3], arr[..., 3].astype(np.float32) / 255.0
    else:
        rgb = arr[..., :3]
        if remove_background is None:
            alpha = np.ones(rgb.shape[:2], np.float32)
        elif callable(remove_background):
            alpha = np.asarray(remove_background(rgb), dtype=np.float32)
        else:
            alpha = border_matte(rgb.astype(np.float32) / 255.0)
    if alpha.shape != rgb.shape[:2] or not np.isfinite(alpha).all():
        raise ValueError("the background remover must return a finite [H, W] alpha matte")
    if float((alpha > 0.5).mean()) < 1e-3:
        raise ValueError(
            f"no foreground found in {path} after background removal; give an RGBA image with the object"
        )
    t_rgb = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    t_a = torch.from_numpy(alpha.clip(0, 1))[None, None]
    t_rgb = t_rgb * t_a + (1 - t_a)  # white background
    t_rgb = torch.nn.functional.interpolate(t_rgb, (size, size), mode="bilinear", align_corners=False)
    t_a = torch.nn.functional.interpolate(t_a, (size, size), mode="bilinear", align_corners=False)
    return t_rgb.clamp(0, 1), t_a.clamp(0, 1)
