"""Fréchet distances: FID (Heusel et al. 2017) and FVD (Unterthiner et al. 2018) on features the user extracts.

The distance between Gaussians N(μ₁, Σ₁) and N(μ₂, Σ₂) fitted to two feature sets is

    d² = ‖μ₁ − μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2 Tr((Σ₁Σ₂)^½),

computed as pytorch-fid does (scipy's ``sqrtm`` in float64; a εI offset when the product is singular; a small
imaginary part from round-off is dropped). ``method="eig"`` takes Tr((Σ₁Σ₂)^½) = Σᵢ √λᵢ(Σ₁Σ₂) instead (as newer
torchmetrics does): no scipy, same value to round-off.

Statistics are stored as pytorch-fid stores them: an ``.npz`` with arrays ``mu`` (D,) and ``sigma`` (D, D), read
with ``np.load(allow_pickle=False)``, so reference statistics published for a paper (e.g. from pytorch-fid or
clean-fid) can be used as they are, with a feature extractor that computes the same features (Inception's 2048-d
pool features for FID, I3D's 400 logits for FVD).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from gen_common.metrics._checks import features2d, finite_tensor, require

__all__ = [
    "FeatureStats",
    "extract_features",
    "fid",
    "fid_from_features",
    "frechet_distance",
    "fvd",
    "load_stats",
    "save_stats",
]

Extractor = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class FeatureStats:
    """Mean ``mu`` (D,) and covariance ``sigma`` (D, D) of features, in float64 (Σ with the N − 1 divisor, as
    pytorch-fid's ``np.cov(rowvar=False)``)."""

    mu: np.ndarray
    sigma: np.ndarray
    num_samples: int | None = None

    def __post_init__(self) -> None:
        mu = np.asarray(self.mu, dtype=np.float64)
        sigma = np.asarray(self.sigma, dtype=np.float64)
        if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
            raise ValueError(f"statistics need mu (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")
        if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
            raise ValueError("statistics hold NaN or infinite values")
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "sigma", sigma)

    @property
    def dim(self) -> int:
        return int(self.mu.shape[0])

    @classmethod
    def from_features(cls, features: Any) -> FeatureStats:
        """Statistics of features (N, D), N ≥ 2."""
        f = features2d(features, "features", min_rows=2)
        return cls(f.mean(axis=0), np.cov(f, rowvar=False), num_samples=f.shape[0])

    def save_stats(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write a pytorch-fid style ``.npz`` (``mu``, ``sigma``) atomically; an existing file is kept unless
        ``overwrite``."""
        return save_stats(self, path, overwrite=overwrite)

    @classmethod
    def load_stats(cls, path: str | os.PathLike[str]) -> FeatureStats:
        return load_stats(path)


def save_stats(stats: FeatureStats, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write ``stats`` as an ``.npz`` with arrays ``mu`` and ``sigma`` (no pickled objects)."""
    from gen_common.atomic import atomic_write

    p = Path(path).expanduser()
    if p.suffix != ".npz":
        raise ValueError(f"statistics files end in .npz (numpy would append it): got {p}")
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    with atomic_write(p, "wb") as fh:
        np.savez(fh, mu=stats.mu, sigma=stats.sigma)
    return p


def load_stats(path: str | os.PathLike[str]) -> FeatureStats:
    """Read an ``.npz`` holding ``mu`` and ``sigma`` (pytorch-fid / clean-fid layout) without unpickling."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(
            f"no statistics file at {p}: compute one with FeatureStats.from_features(...).save_stats"
        )
    try:
        with np.load(p, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError("a single .npy array, not an .npz")
            arrays = {k: data[k] for k in ("mu", "sigma") if k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        # allow_pickle=False refuses object arrays with a ValueError: nothing pickled is ever run
        raise ValueError(f"{p} is not a readable .npz of plain arrays ({exc})") from exc
    missing = {"mu", "sigma"} - set(arrays)
    if missing:
        raise ValueError(f"{p} lacks {sorted(missing)}: expected a pytorch-fid .npz with mu and sigma")
    try:
        return FeatureStats(arrays["mu"], arrays["sigma"])
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from exc


def frechet_distance(
    mu1: Any,
    sigma1: Any,
    mu2: Any,
    sigma2: Any,
    eps: float = 1e-6,
    method: Literal["sqrtm", "eig"] = "sqrtm",
) -> float:
    """d² between N(μ₁, Σ₁) and N(μ₂, Σ₂) (module docstring), in float64."""
    m1 = np.atleast_1d(np.asarray(finite_tensor(mu1, "mu1"), dtype=np.float64))
    m2 = np.atleast_1d(np.asarray(finite_tensor(mu2, "mu2"), dtype=np.float64))
    s1 = np.atleast_2d(np.asarray(finite_tensor(sigma1, "sigma1"), dtype=np.float64))
    s2 = np.atleast_2d(np.asarray(finite_tensor(sigma2, "sigma2"), dtype=np.float64))
    d = m1.shape[0]
    if m1.shape != m2.shape or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"mismatched statistics: mu {m1.shape} vs {m2.shape}, sigma {s1.shape} vs {s2.shape}"
        )
    diff = m1 - m2
    if method == "eig":
        eigvals = np.linalg.eigvals(s1 @ s2)
        tr_covmean = float(np.sqrt(np.clip(eigvals.real, 0, None)).sum())
    elif method == "sqrtm":
        linalg = require("scipy.linalg", "frechet_distance(method='sqrtm')")
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            # pytorch-fid: a singular product (e.g. fewer samples than dimensions) gets a small diagonal offset
            offset = np.eye(d) * eps
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
        if np.iscomplexobj(covmean):
            if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
                m = float(np.max(np.abs(covmean.imag)))
                raise ValueError(f"matrix square root has an imaginary component {m:.3g}: use more samples")
            covmean = covmean.real
        tr_covmean = float(np.trace(covmean))
    else:
        raise ValueError(f"unknown method {method!r}: use 'sqrtm' or 'eig'")
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


@torch.no_grad()
def extract_features(
    inputs: Any,
    extractor: Extractor,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    ndim: int = 4,
) -> np.ndarray:
    """``extractor`` applied in batches to ``inputs`` (images (N, C, H, W) or, with ``ndim=5``, videos) →
    float64 features (N, D). Inputs are passed as they are (the extractor owns its resizing/normalisation)."""
    x = finite_tensor(inputs, "inputs")
    if x.ndim != ndim:
        what = "images (N, C, H, W)" if ndim == 4 else "videos (N, ...) with 5 dimensions"
        raise ValueError(f"expected {what}, got shape {tuple(x.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive count, got {batch_size}")
    if device is None and isinstance(extractor, torch.nn.Module):
        p = next(iter(extractor.parameters()), None)
        device = p.device if p is not None else "cpu"
    feats = []
    for chunk in torch.split(x, batch_size):
        f = extractor(chunk.to(device) if device is not None else chunk)
        f = getattr(f, "pooler_output", f)
        if f.ndim > 2 and all(s == 1 for s in f.shape[2:]):
            f = f.flatten(1)  # (N, D, 1, 1) from a pooled CNN
        if f.ndim != 2 or f.shape[0] != chunk.shape[0]:
            raise ValueError(f"the feature extractor must return (batch, D) features, got {tuple(f.shape)}")
        feats.append(f.detach().double().cpu())
    out = torch.cat(feats).numpy()
    if not np.isfinite(out).all():
        raise ValueError("the feature extractor produced NaN or infinite features")
    return out


def _stats(
    x: Any, extractor: Extractor | None, name: str, batch_size: int, device: Any, ndim: int
) -> FeatureStats:
    if isinstance(x, FeatureStats):
        return x
    if isinstance(x, (str, os.PathLike)):
        return load_stats(x)
    if extractor is None:
        t = finite_tensor(x, name)
        if t.ndim != 2:
            raise ValueError(
                f"{name} has shape {tuple(t.shape)}: pass features (N, D), or a feature_extractor for raw inputs"
            )
        return FeatureStats.from_features(t)
    return FeatureStats.from_features(extract_features(x, extractor, batch_size, device, ndim=ndim))


def fid_from_features(features: Any, reference: Any, method: Literal["sqrtm", "eig"] = "sqrtm") -> float:
    """FID between features (N, D) and ``reference``: features (M, D), a `FeatureStats` or an ``.npz`` path."""
    a = _stats(features, None, "features", 0, None, 2)
    b = _stats(reference, None, "reference", 0, None, 2)
    _same_dim(a, b)
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma, method=method)


def fid(
    images_or_features: Any,
    reference_stats: Any,
    feature_extractor: Extractor | None = None,
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    method: Literal["sqrtm", "eig"] = "sqrtm",
) -> float:
    """FID of images (N, C, H, W) — or features (N, D) when ``feature_extractor`` is None — against
    ``reference_stats``: a `FeatureStats`, an ``.npz`` path, or reference images/features (put through the same
    extractor). The extractor is the user's module (e.g. Inception with weights loaded from safetensors); its
    output must be (batch, D). Papers report FID with Inception pool features against ≥ 10k–50k samples."""
    a = _stats(images_or_features, feature_extractor, "images_or_features", batch_size, device, 4)
    b = _stats(reference_stats, feature_extractor, "reference_stats", batch_size, device, 4)
    _same_dim(a, b)
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma, method=method)


def fvd(
    videos_or_features: Any,
    reference_stats: Any,
    feature_extractor: Extractor | None = None,
    *,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    method: Literal["sqrtm", "eig"] = "sqrtm",
) -> float:
    """FVD: the Fréchet distance of video features. ``videos_or_features`` are videos (N, 5-D batch in the
    extractor's layout, e.g. I3D's (N, C, T, H, W)) or features (N, D); ``reference_stats`` as in `fid`."""
    a = _stats(videos_or_features, feature_extractor, "videos_or_features", batch_size, device, 5)
    b = _stats(reference_stats, feature_extractor, "reference_stats", batch_size, device, 5)
    _same_dim(a, b)
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma, method=method)


def _same_dim(a: FeatureStats, b: FeatureStats) -> None:
    if a.dim != b.dim:
        raise ValueError(
            f"feature dimensions differ ({a.dim} vs {b.dim}): the reference statistics come from another extractor"
        )
