"""Evaluation helpers of the paper's experiments: FID for image samples (with an Inception network the user
supplies: nothing downloads) and text8 spelling accuracy against a word list.

- `fid`: the shared `gen_common.metrics.fid` (pytorch-fid's Fréchet distance; optional extra
  ``pip install "bfn-solver[fid]"``). Pass either ``inception_weights`` — a local copy of the FID Inception
  weights (``pt_inception-2015-12-05-*.pth``, used by torch-fidelity's ``FeatureExtractorInceptionV3`` through
  torchmetrics' ``NoTrainInceptionV3``) — or ``feature``, any module mapping uint8 images (N, 3, H, W) to (N, D)
  features. The reference may be images or precomputed (μ, Σ) statistics in a pytorch-fid ``.npz``.
  torch-fidelity unpickles a weights path without restricting it to tensors, so it would run any code pickled
  in the file; `fid` therefore reads the file itself through gen-common's safe loader (tensors only, or
  safetensors) and hands torch-fidelity a private re-saved copy holding nothing but tensors.
- `spelling_accuracy`: the fraction of generated words found in a word list (the paper scores text8 samples
  with a hunspell en_US dictionary; a plain word list, e.g. /usr/share/dict/words, is the offline stand-in).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

__all__ = ["fid", "load_word_list", "spelling_accuracy", "to_uint8_images"]


def to_uint8_images(x: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """Samples in [−1, 1] (B, H, W, C) (the nnaisense layout) or (B, C, H, W) -> uint8 (B, C, H, W)."""
    if x.ndim != 4:
        raise ValueError(f"expected images (B, H, W, C) or (B, C, H, W), got shape {tuple(x.shape)}")
    if channels_last:
        x = x.permute(0, 3, 1, 2)
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def fid(
    samples: torch.Tensor,
    reference: torch.Tensor | str | os.PathLike[str] | Any,
    *,
    inception_weights: str | os.PathLike[str] | None = None,
    feature: torch.nn.Module | None = None,
    channels_last: bool = True,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> float:
    """FID between samples in [−1, 1] (or uint8 (B, 3, H, W)) and ``reference``: images like ``samples``, or
    precomputed statistics (a `gen_common.metrics.FeatureStats` or a pytorch-fid ``.npz`` of ``mu``/``sigma``).
    Needs ``inception_weights`` or ``feature`` (see the module docstring). The Fréchet distance itself is
    `gen_common.metrics.fid` (pytorch-fid's formula); ImportErrors name the extra to install."""
    if (inception_weights is None) == (feature is None):
        raise ValueError("pass exactly one of inception_weights (a local .pth file) or feature (a module)")
    from gen_common.metrics import FeatureStats
    from gen_common.metrics import fid as frechet_inception_distance

    if inception_weights is not None:
        path = Path(inception_weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"no Inception weights at {path}; download pt_inception-2015-12-05 once and pass its path"
            )
        extractor = _inception(path)
    else:
        extractor = feature
    extractor = extractor.to(device)

    def as_uint8(x: torch.Tensor) -> torch.Tensor:
        return x if x.dtype == torch.uint8 else to_uint8_images(x, channels_last)

    ref = reference if isinstance(reference, (str, os.PathLike, FeatureStats)) else as_uint8(reference)
    return frechet_inception_distance(as_uint8(samples), ref, extractor, batch_size=batch_size, device=device)


def _inception(path: Path) -> torch.nn.Module:
    """torch-fidelity's FID Inception (2048-d pool features of uint8 images) with weights read safely from
    ``path``, through torchmetrics' never-training wrapper."""
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
    except ImportError as exc:
        raise ImportError(
            'FID with Inception weights needs torchmetrics and torch-fidelity: pip install "bfn-solver[fid]"'
        ) from exc
    from gen_common.checkpoint import load_state_dict

    state = load_state_dict(path)  # weights_only=True / safetensors: pickled code is refused here
    with tempfile.TemporaryDirectory(prefix="bfn-solver-inception-") as tmp:
        # torch-fidelity unpickles its weights path without weights_only; give it a copy we wrote ourselves.
        safe_copy = Path(tmp) / "inception.pth"
        torch.save({k: v.contiguous() for k, v in state.items()}, safe_copy)
        try:
            return NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["2048"],
                feature_extractor_weights_path=str(safe_copy),
            )
        except (RuntimeError, ModuleNotFoundError) as exc:  # load_state_dict key/shape mismatch
            if isinstance(exc, ModuleNotFoundError):
                raise ImportError(f'{exc}: pip install "bfn-solver[fid]"') from exc
            raise ValueError(
                f"{path} does not hold the FID Inception weights (pt_inception-2015-12-05-*.pth): {exc}"
            ) from exc


def load_word_list(path: str | os.PathLike[str]) -> set[str]:
    """Lower-cased words, one per line (``#`` comments and blank lines skipped)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no word list at {p}")
    words = set()
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        w = line.strip().lower()
        if w and not w.startswith("#"):
            words.add(w)
    if not words:
        raise ValueError(f"{p} holds no words")
    return words


def spelling_accuracy(texts: Iterable[str], words: set[str] | str | os.PathLike[str]) -> float:
    """Fraction of the words of ``texts`` (split at spaces or underscores, as text8 samples print) that are in
    the word list. Empty input gives 0.0."""
    vocab = words if isinstance(words, set) else load_word_list(words)
    total = correct = 0
    for text in texts:
        for w in text.replace("_", " ").split():
            total += 1
            correct += w.lower() in vocab
    return correct / total if total else 0.0
