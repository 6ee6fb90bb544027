"""Long-text evaluation helpers: load a user's FID feature extractor from a ``module:callable`` spec (plus optional
safetensors weights) and compute FID of generated images through `gen_common.metrics.fid`. Nothing downloads."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import torch

__all__ = ["fid_of_images", "load_extractor"]


def load_extractor(spec: str, weights: str | Path | None = None, device: str | torch.device = "cpu") -> Any:
    """The user's feature extractor: ``"package.module:factory"`` where ``factory()`` returns a `torch.nn.Module`
    (or a module class) mapping images (N, 3, H, W) in [0, 1] to features (N, D); ``weights`` (a ``.safetensors``
    state dict) are loaded strictly, so a file that does not fit the module is an error, not a silent half-load."""
    if importlib.util.find_spec("scipy") is None:
        raise ValueError(
            'FID needs scipy (the matrix square root of pytorch-fid): pip install "longalign[fid]"'
        )
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--fid-extractor {spec!r}: write it as 'package.module:factory'")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"cannot import the feature extractor {spec!r} ({exc}); is its package installed?"
        ) from exc
    extractor = factory()
    if not isinstance(extractor, torch.nn.Module):
        raise ValueError(f"{spec} returned {type(extractor).__name__}, not a torch.nn.Module")
    if weights is not None:
        from safetensors.torch import load_file

        w = Path(weights)
        if w.suffix != ".safetensors" or not w.is_file():
            raise ValueError(f"no .safetensors weights at {w} (convert other formats to safetensors first)")
        try:
            extractor.load_state_dict(load_file(str(w)), strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ValueError(f"{w} does not fit the extractor {spec}: {first}") from exc
    from gen_common.device import resolve_device

    return extractor.eval().to(resolve_device(device))


def fid_of_images(images: torch.Tensor, reference: Any, extractor: Any) -> tuple[float, Any]:
    """FID of ``images`` (N, 3, H, W) in [0, 1] against ``reference`` (an ``.npz`` of pytorch-fid (μ, Σ), a
    `FeatureStats`, or reference images) with ``extractor``; returns the FID and the images' `FeatureStats`."""
    from gen_common.metrics import FeatureStats, extract_features, fid

    if images.shape[0] < 2:
        raise ValueError("FID needs at least 2 images (a covariance); give more prompts")
    stats = FeatureStats.from_features(extract_features(images, extractor))
    return fid(stats, reference, extractor), stats
