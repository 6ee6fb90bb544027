"""Offline "real" and "generated" image sources for demos: bundled sample photographs and a resampling generator.

Real photos come from files that ship inside installed wheels (nothing downloads): scikit-image's ``skimage/data``
photographs (astronaut, camera, chelsea, coffee, rocket, ...; the ones its ``data`` module fetches on demand are
not used) and scikit-learn's two sample photos (china.jpg, flower.jpg). Install them with
``pip install "genprobe[samples]"``. Without either, :func:`bundled_photos` falls back to synthetic images with a
natural 1/f amplitude spectrum and random phases (says so in ``PhotoSet.origin``).

The "generator" is a stand-in for a decoder's last upsampling layer: a crop is area-downsampled by 2 and
bilinearly upsampled back, so it keeps the low frequencies of real crops and loses (and aliases) the top octave.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gen_common.seeding import rand, randint
from genprobe.data import GeneratorFn, ImageSource

__all__ = ["SKIMAGE_PHOTOS", "PhotoSet", "bundled_photos", "demo_sources", "photo_crops", "resampled_crops"]

# Photographs shipped inside the scikit-image wheel (checked in skimage 0.26's skimage/data folder).
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "brick.png",
    "grass.png",
    "gravel.png",
    "coins.png",
    "moon.png",
    "retina.jpg",
)
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")


@dataclass
class PhotoSet:
    images: list[torch.Tensor]  # each (C, H, W) float in [0, 1]
    origin: str  # "scikit-image+scikit-learn", "scikit-image", "scikit-learn" or "synthetic 1/f"
    names: list[str]


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _load(path: Path, channels: int) -> torch.Tensor:
    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
    t = torch.from_numpy(arr.copy()).float() / 255.0
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1)


def _synthetic(n: int, size: int, channels: int, seed: int) -> list[torch.Tensor]:
    from genprobe.filters import frequency_radius

    g = torch.Generator().manual_seed(seed)
    r = frequency_radius(size, size).float().clamp_min(1.0)
    out = []
    for _ in range(n):
        noise = torch.fft.rfft2(torch.randn(channels, size, size, generator=g))
        img = torch.fft.irfft2(noise / r, s=(size, size))
        img = (img - img.mean()) / (4 * img.std()) + 0.5
        out.append(img.clamp(0, 1))
    return out


def bundled_photos(channels: int = 3, *, min_size: int = 64, seed: int = 0) -> PhotoSet:
    """The sample photographs installed with scikit-image / scikit-learn, or synthetic 1/f images."""
    images, names, origins = [], [], []
    sk = _package_dir("skimage")
    if sk is not None:
        for f in SKIMAGE_PHOTOS:
            p = sk / "data" / f
            if p.is_file():
                images.append(_load(p, channels))
                names.append(f)
        if names:
            origins.append("scikit-image")
    sl = _package_dir("sklearn")
    if sl is not None:
        before = len(names)
        for f in SKLEARN_PHOTOS:
            p = sl / "datasets" / "images" / f
            if p.is_file():
                images.append(_load(p, channels))
                names.append(f)
        if len(names) > before:
            origins.append("scikit-learn")
    keep = [(i, n) for i, n in zip(images, names) if min(i.shape[1:]) >= min_size]
    if keep:
        return PhotoSet([i for i, _ in keep], "+".join(origins), [n for _, n in keep])
    return PhotoSet(
        _synthetic(12, 256, channels, seed), "synthetic 1/f", [f"synthetic_{i}" for i in range(12)]
    )


def _crops(photos: PhotoSet, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    which = randint(0, len(photos.images), (n,), generator)
    u = rand((n, 2), generator)
    out = []
    for k in range(n):
        img = photos.images[int(which[k])]
        h, w = img.shape[1:]
        top = int(u[k, 0] * (h - size + 1))
        left = int(u[k, 1] * (w - size + 1))
        out.append(img[:, top : top + size, left : left + size])
    return torch.stack(out)


def photo_crops(photos: PhotoSet, size: int) -> GeneratorFn:
    """A sampler ``fn(n, generator)`` of random ``size``-px crops of the photos (the "real" source)."""

    def fn(n: int, generator: torch.Generator) -> torch.Tensor:
        return _crops(photos, n, size, generator)

    return fn


def resampled_crops(photos: PhotoSet, size: int, factor: int = 2) -> GeneratorFn:
    """A sampler of crops area-downsampled by ``factor`` and bilinearly upsampled back (the "generated" one)."""

    def fn(n: int, generator: torch.Generator) -> torch.Tensor:
        x = _crops(photos, n, size, generator)
        small = F.avg_pool2d(x, factor)
        return F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)

    return fn


def demo_sources(
    num_images: int, size: int, channels: int = 3, *, seed: int = 0
) -> tuple[ImageSource, ImageSource, PhotoSet]:
    """("real" photo crops, "generated" resampled crops, the photos used)."""
    photos = bundled_photos(channels, min_size=size, seed=seed)
    real = ImageSource.from_generator(photo_crops(photos, size), num_images, "real", seed=2 * seed)
    fake = ImageSource.from_generator(
        resampled_crops(photos, size), num_images, "generated", seed=2 * seed + 1
    )
    return real, fake, photos
