"""PSNR and SSIM per image (torchmetrics functional), averaged over the batch as papers report them.

torchmetrics' own ``peak_signal_noise_ratio`` pools the squared error over the whole batch before the log; the
per-image mean here is the usual "average PSNR over the test set".
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from gen_common.metrics._checks import images4d, require

__all__ = ["psnr", "ssim"]


def _pair(preds: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = images4d(preds, "preds", channels=None), images4d(target, "target", channels=None)
    if p.shape != t.shape:
        raise ValueError(f"preds and target differ in shape: {tuple(p.shape)} vs {tuple(t.shape)}")
    return p.float(), t.float()


def _reduce(v: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction is 'mean' or 'none', got {reduction!r}")
    return v.mean() if reduction == "mean" else v


def psnr(
    preds: Any, target: Any, data_range: float = 1.0, reduction: Literal["mean", "none"] = "mean"
) -> torch.Tensor:
    """10·log₁₀(range² / MSE) per image (N, C, H, W); identical images give +inf."""
    tmf = require("torchmetrics.functional.image", "psnr")
    p, t = _pair(preds, target)
    v = tmf.peak_signal_noise_ratio(p, t, data_range=data_range, reduction="none", dim=(1, 2, 3))
    return _reduce(v, reduction)


def ssim(
    preds: Any, target: Any, data_range: float = 1.0, reduction: Literal["mean", "none"] = "mean"
) -> torch.Tensor:
    """SSIM (Wang et al. 2004; Gaussian window 11, σ = 1.5) per image (N, C, H, W)."""
    tmf = require("torchmetrics.functional.image", "ssim")
    p, t = _pair(preds, target)
    v = tmf.structural_similarity_index_measure(p, t, data_range=data_range, reduction="none")
    return _reduce(v, reduction)
