"""Distances between samples and a toy's true distribution, for quality-vs-NFE curves.

- `sliced_wasserstein`: mean over random directions of the 1-D Wasserstein-1 distance between projections
  (sorted samples; equal sample sizes);
- `mmd_rbf`: the unbiased estimate of MMD² with a Gaussian kernel (can be slightly negative near 0);
- `total_variation`: between the empirical joint of class-id samples and a true table (`CategoricalJoint`).
"""

from __future__ import annotations

import torch

__all__ = ["mmd_rbf", "sliced_wasserstein", "total_variation"]


def sliced_wasserstein(
    x: torch.Tensor, y: torch.Tensor, num_projections: int = 256, generator: torch.Generator | None = None
) -> float:
    """Sliced Wasserstein-1 distance between two equally sized samples (N, D)."""
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(
            f"expected two samples of the same shape (N, D), got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    d = torch.randn(x.shape[1], num_projections, generator=generator, dtype=torch.float64)
    d = d / d.norm(dim=0, keepdim=True)
    px = torch.sort(x.double().cpu() @ d, dim=0).values
    py = torch.sort(y.double().cpu() @ d, dim=0).values
    return float((px - py).abs().mean())


def mmd_rbf(x: torch.Tensor, y: torch.Tensor, bandwidth: float = 0.1) -> float:
    """Unbiased MMD² between samples x (N, D) and y (M, D) with k(a, b) = exp(−‖a − b‖²/(2 h²))."""
    x, y = x.double().cpu(), y.double().cpu()

    def k(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.exp(-torch.cdist(a, b).pow(2) / (2 * bandwidth**2))

    n, m = x.shape[0], y.shape[0]
    kxx, kyy = k(x, x), k(y, y)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(sxx + syy - 2 * k(x, y).mean())


def total_variation(samples: torch.Tensor, probs: torch.Tensor) -> float:
    """TV between the empirical joint of ids (N, L) and a joint table of shape (K,)*L."""
    k, l = probs.shape[0], probs.ndim
    if samples.ndim != 2 or samples.shape[1] != l:
        raise ValueError(f"expected samples of shape (N, {l}), got {tuple(samples.shape)}")
    powers = k ** torch.arange(l - 1, -1, -1)
    idx = (samples.long().cpu() * powers).sum(-1)
    hist = torch.bincount(idx, minlength=probs.numel()).double() / samples.shape[0]
    return 0.5 * float((hist - probs.flatten().double()).abs().sum())
