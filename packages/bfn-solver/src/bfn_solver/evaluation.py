"""Evaluation helpers of the paper's experiments: FID for image samples (with an Inception network the user
supplies: nothing downloads) and text8 spelling accuracy against a word list.

- `fid`: torchmetrics' ``FrechetInceptionDistance`` (optional extra ``pip install "bfn-solver[fid]"``). Pass
  either ``inception_weights`` — a local copy of the FID Inception weights (``pt_inception-2015-12-05-*.pth``,
  used by torch-fidelity's ``FeatureExtractorInceptionV3`` through torchmetrics' ``feature_extractor_weights_path``)
  — or ``feature``, any module mapping uint8 images (N, 3, H, W) to features with a ``num_features`` attribute.
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
    reference: torch.Tensor,
    *,
    inception_weights: str | os.PathLike[str] | None = None,
    feature: torch.nn.Module | None = None,
    channels_last: bool = True,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> float:
    """FID between two sets of images in [−1, 1] (or uint8 (B, 3, H, W)). Needs ``inception_weights`` or
    ``feature`` (see the module docstring); raises ImportError naming the extra if torchmetrics is missing."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as exc:
        raise ImportError(
            'FID needs torchmetrics (and torch-fidelity): pip install "bfn-solver[fid]"'
        ) from exc
    if (inception_weights is None) == (feature is None):
        raise ValueError("pass exactly one of inception_weights (a local .pth file) or feature (a module)")
    if inception_weights is not None:
        path = Path(inception_weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"no Inception weights at {path}; download pt_inception-2015-12-05 once and pass its path"
            )
        metric = _inception_fid(FrechetInceptionDistance, path)
    else:
        if not hasattr(feature, "num_features"):
            raise ValueError(
                "a custom feature module needs a num_features attribute (torchmetrics requires it)"
            )
        metric = FrechetInceptionDistance(feature=feature, normalize=False)
    metric = metric.to(device)

    def as_uint8(x: torch.Tensor) -> torch.Tensor:
        return x if x.dtype == torch.uint8 else to_uint8_images(x, channels_last)

    for real, batch in ((True, reference), (False, samples)):
        for chunk in torch.split(batch, batch_size):
            metric.update(as_uint8(chunk).to(device), real=real)
    return float(metric.compute())


def _inception_fid(metric_cls, path: Path):
    """torchmetrics' FID on the 2048-d Inception features with weights read safely from ``path``."""
    from gen_common.checkpoint import load_state_dict

    state = load_state_dict(path)  # weights_only=True / safetensors: pickled code is refused here
    with tempfile.TemporaryDirectory(prefix="bfn-solver-inception-") as tmp:
        # torch-fidelity unpickles its weights path without weights_only; give it a copy we wrote ourselves.
        safe_copy = Path(tmp) / "inception.pth"
        torch.save({k: v.contiguous() for k, v in state.items()}, safe_copy)
        try:
            return metric_cls(feature=2048, feature_extractor_weights_path=str(safe_copy), normalize=False)
        except RuntimeError as exc:  # load_state_dict key/shape mismatch
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
