"""Conditional-image leakage fixes for image-to-video diffusion: early start, Analytic-Init, TimeNoise.

Implements Zhao et al., "Identifying and Solving Conditional Image Leakage in Image-to-Video Diffusion Model"
(NeurIPS 2024) on stock diffusers pipelines. The mathematics (Analytic-Init, schedules, TimeNoise, losses,
statistics) imports without diffusers; the diffusers-facing names (`wrap_pipeline`, `CILPipeline`,
`TimestepListDDIMScheduler`, `load_pipeline`, `finetune_svd`) load diffusers on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from i2v_leak.analytic_init import (
    analytic_init_moments_ve,
    analytic_init_moments_vp,
    analytic_init_ve,
    analytic_init_vp,
    cross_entropy_to_isotropic,
    kl_gaussian_to_isotropic,
)
from i2v_leak.losses import ddpm_timenoise_loss, edm_v_preconditioning, svd_timenoise_loss
from i2v_leak.metrics import (
    ClipImageEncoder,
    flow_motion_score,
    image_alignment,
    load_raft,
    motion_score,
    temporal_consistency,
)
from i2v_leak.presets import PRESETS, Preset, get_preset
from i2v_leak.schedules import edm_sigmas, karras_sigmas, start_timesteps
from i2v_leak.stats import LatentStats, RunningMoments, encode_video_latents, estimate_latent_stats
from i2v_leak.timenoise import TimeNoise
from i2v_leak.toys import GaussianToy, MixtureToy, scaled_linear_alphas_cumprod, zero_terminal_snr

__version__ = "0.1.0"

# Names that need diffusers, imported on first access so that `import i2v_leak` stays light.
_LAZY = {
    "CILPipeline": "i2v_leak.adapters",
    "wrap_pipeline": "i2v_leak.adapters",
    "detect_kind": "i2v_leak.adapters",
    "TimestepListDDIMScheduler": "i2v_leak.ddim",
    "ddim_scheduler_for_start": "i2v_leak.ddim",
    "load_pipeline": "i2v_leak.loading",
    "LoadOptions": "i2v_leak.loading",
    "GenerationConfig": "i2v_leak.generation",
    "generate_video": "i2v_leak.generation",
    "SVDFinetuneConfig": "i2v_leak.train",
    "finetune_svd": "i2v_leak.train",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'i2v_leak' has no attribute {name!r}")


__all__ = [
    "PRESETS",
    "CILPipeline",
    "ClipImageEncoder",
    "GaussianToy",
    "GenerationConfig",
    "LatentStats",
    "LoadOptions",
    "MixtureToy",
    "Preset",
    "RunningMoments",
    "SVDFinetuneConfig",
    "TimeNoise",
    "TimestepListDDIMScheduler",
    "analytic_init_moments_ve",
    "analytic_init_moments_vp",
    "analytic_init_ve",
    "analytic_init_vp",
    "cross_entropy_to_isotropic",
    "ddim_scheduler_for_start",
    "ddpm_timenoise_loss",
    "detect_kind",
    "edm_sigmas",
    "edm_v_preconditioning",
    "encode_video_latents",
    "estimate_latent_stats",
    "finetune_svd",
    "flow_motion_score",
    "generate_video",
    "get_preset",
    "image_alignment",
    "karras_sigmas",
    "kl_gaussian_to_isotropic",
    "load_pipeline",
    "load_raft",
    "motion_score",
    "scaled_linear_alphas_cumprod",
    "start_timesteps",
    "svd_timenoise_loss",
    "temporal_consistency",
    "wrap_pipeline",
    "zero_terminal_snr",
]
