"""Image and video metrics shared by the packages (``pip install "gen-common[metrics]"``).

Nothing here downloads: CLIP models, feature extractors (Inception, I3D, ...) and LPIPS backbones are the user's,
passed in as modules or loaded from local safetensors / ``weights_only`` files; reference statistics are
pytorch-fid style ``.npz`` files of (μ, Σ). Importing this module needs only torch and numpy; a function that
needs the extra raises an ImportError saying ``pip install "gen-common[metrics]"``.

| function | what |
| --- | --- |
| `clip_score` | CLIPScore = scale·max(cos(E_I, E_T), 0) with the user's CLIP (100: torchmetrics; 2.5: CLIP-S) |
| `FeatureStats`, `save_stats`, `load_stats` | (μ, Σ) of features, to and from a pytorch-fid ``.npz`` |
| `frechet_distance` | ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½), pytorch-fid's formula |
| `fid`, `fid_from_features`, `fvd` | Fréchet distance of extractor features of images / videos to reference stats |
| `kid` | unbiased MMD² with the cubic polynomial kernel over random subsets (torchmetrics / clean-fid) |
| `lpips`, `load_lpips` | LPIPS (the lpips package) with user-supplied backbone weights |
| `psnr`, `ssim` | per-image PSNR / SSIM (torchmetrics functional), averaged |
"""

from gen_common.metrics.clip_score import CLIP_MEAN, CLIP_STD, clip_features, clip_score
from gen_common.metrics.frechet import (
    FeatureStats,
    extract_features,
    fid,
    fid_from_features,
    frechet_distance,
    fvd,
    load_stats,
    save_stats,
)
from gen_common.metrics.image import psnr, ssim
from gen_common.metrics.kid import kid, polynomial_mmd
from gen_common.metrics.perceptual import load_lpips, lpips

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "FeatureStats",
    "clip_features",
    "clip_score",
    "extract_features",
    "fid",
    "fid_from_features",
    "frechet_distance",
    "fvd",
    "kid",
    "load_lpips",
    "load_stats",
    "lpips",
    "polynomial_mmd",
    "psnr",
    "save_stats",
    "ssim",
]
