"""Kernel Inception Distance (Bińkowski et al. 2018), as torchmetrics' ``KernelInceptionDistance`` computes it.

KID is the unbiased estimate of MMD² between two feature sets with the polynomial kernel
k(x, y) = (γ·xᵀy + c)^d (defaults d = 3, γ = 1/D, c = 1):

    MMD²ᵤ = [Σ_{i≠j} k(xᵢ, xⱼ) + Σ_{i≠j} k(yᵢ, yⱼ)] / (m(m − 1)) − 2 Σ_{i,j} k(xᵢ, yⱼ) / m²,

averaged over ``subsets`` random subsets of ``subset_size`` rows of each set (drawn without replacement, as
torchmetrics and clean-fid do); the result is (mean, standard deviation over subsets). Unbiased: it can be slightly
negative when the two sets come from the same distribution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from gen_common.metrics._checks import finite_tensor

__all__ = ["kid", "polynomial_mmd"]


def _poly_kernel(a: torch.Tensor, b: torch.Tensor, degree: int, gamma: float, coef: float) -> torch.Tensor:
    return (a @ b.T * gamma + coef) ** degree


def polynomial_mmd(
    x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None, coef: float = 1.0
) -> float:
    """Unbiased MMD² (module docstring) between two equally sized feature sets (m, D), in float64."""
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(
            f"expected two feature sets of the same shape (m, D), got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    m = x.shape[0]
    if m < 2:
        raise ValueError("the unbiased MMD needs at least 2 rows per set")
    x, y = x.double(), y.double()
    g = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx, k_yy, k_xy = (_poly_kernel(a, b, degree, g, coef) for a, b in ((x, x), (y, y), (x, y)))
    off_xx = k_xx.sum() - k_xx.diagonal().sum()
    off_yy = k_yy.sum() - k_yy.diagonal().sum()
    return float((off_xx + off_yy) / (m * (m - 1)) - 2 * k_xy.sum() / m**2)


@torch.no_grad()
def kid(
    features_or_images: Any,
    reference: Any,
    feature_extractor: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    seed: int = 0,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> tuple[float, float]:
    """KID (mean, std over subsets) between two sets: features (N, D) and (M, D), or images (N, C, H, W) put
    through ``feature_extractor``. ``subset_size`` must not exceed either set (torchmetrics' rule); the subsets are
    drawn from a generator seeded with ``seed``, so the result is reproducible."""
    from gen_common.metrics.frechet import extract_features

    def feats(v: Any, name: str) -> torch.Tensor:
        if feature_extractor is not None:
            return torch.from_numpy(extract_features(v, feature_extractor, batch_size, device))
        t = finite_tensor(v, name)
        if t.ndim != 2:
            raise ValueError(
                f"{name} must be features (N, D) (or pass a feature_extractor), got {tuple(t.shape)}"
            )
        return t.detach().cpu().double()

    a, b = feats(features_or_images, "features_or_images"), feats(reference, "reference")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    if subsets < 1:
        raise ValueError(f"subsets must be a positive count, got {subsets}")
    if not 2 <= subset_size <= min(a.shape[0], b.shape[0]):
        raise ValueError(
            f"subset_size={subset_size} must be between 2 and the smaller set's size "
            f"({min(a.shape[0], b.shape[0])}): lower it or pass more samples"
        )
    gen = torch.Generator().manual_seed(seed)
    scores = torch.empty(subsets, dtype=torch.float64)
    for i in range(subsets):
        ia = torch.randperm(a.shape[0], generator=gen)[:subset_size]
        ib = torch.randperm(b.shape[0], generator=gen)[:subset_size]
        scores[i] = polynomial_mmd(a[ia], b[ib], degree=degree, gamma=gamma, coef=coef)
    return float(scores.mean()), float(scores.std(unbiased=False))
