"""Frame-quality metrics of the PoseCrafter / DisCo / MagicAnimate evaluation: L1, PSNR, SSIM computed here;
LPIPS, FID and FVD from feature extractors the user supplies (nothing is downloaded). The Fréchet distance is
`gen_common.metrics`' (same value, tested). PSNR, SSIM and LPIPS stay here because gen_common's differ by
definition or interface: its PSNR averages per-image PSNRs (here: one PSNR of all frames' pooled MSE), its SSIM
(torchmetrics) also averages over the reflect-padded border windows (here: valid windows only; 7e-4 apart on
24×20 frames), and its LPIPS needs the `lpips` package's trained model (here: any user backbone, eq. 1).

Frames are (F, H, W, 3) uint8 arrays or float tensors in [0, 1] of shape (F, 3, H, W).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gen_common.metrics.frechet import frechet_distance as gm_frechet

__all__ = ["fid", "frechet_distance", "fvd", "l1", "lpips", "psnr", "ssim"]


def _t(x: Any) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8:
            raise ValueError("numpy frames must be uint8 (F, H, W, 3)")
        return torch.from_numpy(x).permute(0, 3, 1, 2).double() / 255
    return torch.as_tensor(x).double()


def _pair(a: Any, b: Any) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _t(a), _t(b)
    if x.shape != y.shape:
        raise ValueError(f"frames differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("frames contain NaN or inf")
    return x, y


def l1(a: Any, b: Any) -> float:
    """Mean absolute error in [0, 1] units."""
    x, y = _pair(a, b)
    return float((x - y).abs().mean())


def psnr(a: Any, b: Any) -> float:
    """Peak signal-to-noise ratio (dB, peak 1) of all frames together; inf for identical inputs."""
    x, y = _pair(a, b)
    mse = float(((x - y) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def ssim(a: Any, b: Any, window: int = 11, sigma: float = 1.5) -> float:
    """Structural similarity (Wang et al. 2004) with an 11-px Gaussian window (σ 1.5), K1 0.01, K2 0.03, per
    channel over valid windows, averaged."""
    x, y = _pair(a, b)
    c = x.shape[1]
    r = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :]).expand(c, 1, window, window)

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, k, groups=c)

    if min(x.shape[-2:]) < window:
        raise ValueError(f"frames smaller than the {window}-px SSIM window")
    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(s.mean())


def lpips(
    a: Any,
    b: Any,
    backbone: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    weights: Sequence[torch.Tensor] | None = None,
) -> float:
    """LPIPS's distance (Zhang et al. 2018, eq. 1) with a user-supplied ``backbone(x in [-1, 1]) -> [features
    (N, C_l, H_l, W_l)]``: channel-unit-normalised feature differences, squared, weighted per channel (``weights``,
    the learned linear layers; all ones without them), averaged over space, summed over layers."""
    x, y = _pair(a, b)
    fx, fy = backbone((x * 2 - 1).float()), backbone((y * 2 - 1).float())
    total = torch.zeros(x.shape[0], dtype=torch.float64)
    for i, (p, q) in enumerate(zip(fx, fy)):
        p = p.double() / (p.double().norm(dim=1, keepdim=True) + 1e-10)
        q = q.double() / (q.double().norm(dim=1, keepdim=True) + 1e-10)
        d = (p - q) ** 2
        if weights is not None:
            d = d * torch.as_tensor(weights[i], dtype=torch.float64).view(1, -1, 1, 1)
        total += d.sum(1).mean((-2, -1))
    return float(total.mean())


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½): `gen_common.metrics.frechet_distance` with the trace of the square
    root from the eigenvalues of Σ₁Σ₂ (``method="eig"``: no scipy needed)."""
    return gm_frechet(mu1, cov1, mu2, cov2, method="eig")


def _stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(feats, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors (N, D), got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def fid(real: Any, fake: Any, extractor: Callable[[Any], Any]) -> float:
    """Fréchet distance between ``extractor`` features (N, D) of real and generated frames (e.g. Inception
    pool features; FID-VID uses a video extractor per clip)."""
    return frechet_distance(*_stats(np.asarray(extractor(real))), *_stats(np.asarray(extractor(fake))))


def fvd(real_videos: Sequence[Any], fake_videos: Sequence[Any], extractor: Callable[[Any], Any]) -> float:
    """Fréchet video distance: ``extractor(video) -> (D,)`` (e.g. I3D logits) over each set of clips."""
    fr = np.stack([np.asarray(extractor(v)).reshape(-1) for v in real_videos])
    ff = np.stack([np.asarray(extractor(v)).reshape(-1) for v in fake_videos])
    return frechet_distance(*_stats(fr), *_stats(ff))
