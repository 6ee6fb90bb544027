"""The offline toy that proves the probe: image sources that differ in exactly one frequency band.

Each image is the sum of two independent Gaussian random fields: a *low band* (all DFT bins with
``r <= low_radius``, the mean included) and a *high band* (``r >= high_radius``), with a gap between them where the
probe's cutoff lies. Band-limited white noise, rescaled so each band has the requested per-pixel standard
deviation. Two pairs of sources:

- ``"hf"``: identical low bands; source ``b``'s high band has ``contrast`` times the standard deviation of ``a``'s
  (think: a generator that renders fine detail too weakly). After the ideal low-pass at ``cutoff`` both sources
  have exactly the same distribution, so *any* classifier is at chance; after the high-pass they differ.
- ``"lf"``: identical high bands, the low band differs: the reverse.

This mirrors the paper's frequency probe (arXiv 2405.18029: accuracy survives high-pass filtering, drops after
low-pass filtering) with a ground truth: the information is where the toy put it. Pixel values are
``offset + scale * field`` (default 0.5 + 0.08 * field, inside [0, 1] to ~4.4 sigma, so PNG exports keep them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gen_common.seeding import randn
from genprobe.data import ImageSource
from genprobe.filters import frequency_radius

__all__ = ["PAIRS", "ToyConfig", "band_fields", "toy_pair"]

PAIRS = ("hf", "lf")


@dataclass(frozen=True)
class ToyConfig:
    size: int = 16
    channels: int = 1
    low_radius: float | None = None  # default size/4 cycles per image
    high_radius: float | None = None  # default 3*size/8
    low_std: float = 1.0
    high_std: float = 1.0
    contrast: float = 0.5  # source b's differing band has contrast * the std of source a's
    offset: float = 0.5
    scale: float = 0.08

    def __post_init__(self) -> None:
        if self.size < 4 or self.channels < 1:
            raise ValueError("the toy needs size >= 4 and channels >= 1")
        if not self.r_low < self.r_high:
            raise ValueError(f"low_radius ({self.r_low}) must be below high_radius ({self.r_high})")
        if self.contrast <= 0 or self.low_std <= 0 or self.high_std <= 0:
            raise ValueError("standard deviations and contrast must be > 0")

    @property
    def r_low(self) -> float:
        return self.low_radius if self.low_radius is not None else self.size / 4

    @property
    def r_high(self) -> float:
        return self.high_radius if self.high_radius is not None else 3 * self.size / 8

    @property
    def cutoff(self) -> float:
        """A probe cutoff in the gap: low-pass(cutoff) keeps exactly the low band, high-pass the high band."""
        return (self.r_low + self.r_high) / 2


def band_fields(
    n: int, config: ToyConfig, low_std: float, high_std: float, generator: torch.Generator
) -> torch.Tensor:
    """``n`` images (n, C, S, S): low-band field of std ``low_std`` + high-band field of std ``high_std``."""
    s = config.size
    noise = randn((n, config.channels, s, s), generator)
    spec = torch.fft.rfft2(noise)
    r = frequency_radius(s, s).float()
    full = frequency_radius(s, s, half=False)
    low, high = (r <= config.r_low).float(), (r >= config.r_high).float()
    # Unit-variance white noise through a 0/1 mask has pixel variance (#bins kept) / (S*S).
    n_low = float((full <= config.r_low).sum())
    n_high = float((full >= config.r_high).sum())
    lo = torch.fft.irfft2(spec * low, s=(s, s)) * (low_std / (n_low / (s * s)) ** 0.5)
    hi = torch.fft.irfft2(spec * high, s=(s, s)) * (high_std / (n_high / (s * s)) ** 0.5)
    return config.offset + config.scale * (lo + hi)


def toy_pair(
    pair: str, num_images: int, config: ToyConfig | None = None, *, seed: int = 0
) -> tuple[ImageSource, ImageSource]:
    """The two generator sources of ``pair`` (``"hf"`` or ``"lf"``), named ``<pair>-a`` and ``<pair>-b``."""
    cfg = config or ToyConfig()
    if pair not in PAIRS:
        raise ValueError(f"unknown toy pair {pair!r}: use one of {PAIRS}")
    a = (cfg.low_std, cfg.high_std)
    b = (
        (cfg.low_std, cfg.high_std * cfg.contrast)
        if pair == "hf"
        else (cfg.low_std * cfg.contrast, cfg.high_std)
    )
    return (
        ImageSource.from_generator(
            lambda n, g: band_fields(n, cfg, *a, g), num_images, f"{pair}-a", seed=seed * 2
        ),
        ImageSource.from_generator(
            lambda n, g: band_fields(n, cfg, *b, g), num_images, f"{pair}-b", seed=seed * 2 + 1
        ),
    )
