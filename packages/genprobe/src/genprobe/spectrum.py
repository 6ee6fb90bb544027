"""Radial (azimuthally binned) power spectra, for the frequency plots of real and generated images.

Same frequency units as :mod:`genprobe.filters`: radius in cycles per image. With ``reduce="sum"`` the bins add
up to the image energy (Parseval): ``sum_b P[b] == sum_pixels x^2``.
"""

from __future__ import annotations

from typing import Literal

import torch

from genprobe.filters import frequency_radius

__all__ = ["radial_power_spectrum"]


def radial_power_spectrum(
    x: torch.Tensor, *, bin_width: float = 1.0, reduce: Literal["sum", "mean"] = "mean"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Power ``|X_k|^2 / (H W)`` of every DFT bin, grouped by radius into bins of ``bin_width`` cycles/image.

    A bin ``b`` collects the frequencies with ``round(r / bin_width) == b`` (so an integer-frequency sinusoid of
    radius ``f`` lands in bin ``round(f)``). ``reduce="sum"`` adds the bin's powers (the total is the energy
    ``sum x^2``, Parseval); ``"mean"`` averages them (the usual azimuthal average, comparable across bins).

    Args:
        x: (..., H, W) real images (any leading dimensions; computed in float64 for the sums).

    Returns:
        ``(radii, power)``: bin centres (B,) and power (..., B), float64.
    """
    if x.ndim < 2:
        raise ValueError(f"expected (..., H, W), got shape {tuple(x.shape)}")
    if bin_width <= 0:
        raise ValueError(f"bin_width must be > 0, got {bin_width}")
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    h, w = x.shape[-2:]
    spec = torch.fft.fft2(x.to(torch.float64))
    power = (spec.real**2 + spec.imag**2) / (h * w)
    r = frequency_radius(h, w, device=x.device, half=False)
    idx = torch.floor(r / bin_width + 0.5).long().reshape(-1)
    nbins = int(idx.max()) + 1
    flat = power.reshape(-1, h * w)
    out = torch.zeros(flat.shape[0], nbins, dtype=torch.float64, device=x.device)
    out.index_add_(1, idx, flat)
    if reduce == "mean":
        counts = torch.bincount(idx, minlength=nbins).to(torch.float64)
        out = out / counts.clamp_min(1)
    radii = torch.arange(nbins, dtype=torch.float64, device=x.device) * bin_width
    return radii, out.reshape(*x.shape[:-2], nbins)
