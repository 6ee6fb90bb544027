"""Conditional-image leakage fixes for image-to-video diffusion: early start, Analytic-Init, TimeNoise.

Implements Zhao et al., "Identifying and Solving Conditional Image Leakage in Image-to-Video Diffusion Model"
(NeurIPS 2024) on stock diffusers pipelines. The mathematics (Analytic-Init, schedules, TimeNoise, losses,
statistics) imports without diffusers; every name is imported on first use, the diffusers-facing ones (`wrap_pipeline`,
`CILPipeline`, `TimestepListDDIMScheduler`, `load_pipeline`, `finetune_svd`) loading diffusers then.
"""

from __future__ import annotations

from gen_common.lazy import lazy_exports

__version__ = "0.1.0"

# Names are imported on first access (PEP 562), so that `import i2v_leak` and `i2v-leak --help` stay light (no
# torch, no diffusers until a name that needs them is used).
_LAZY = {
    "CILPipeline": "i2v_leak.adapters",
    "ClipImageEncoder": "i2v_leak.metrics",
    "GaussianToy": "i2v_leak.toy",
    "GenerationConfig": "i2v_leak.generation",
    "LatentStats": "i2v_leak.stats",
    "LoadOptions": "i2v_leak.loading",
    "MixtureToy": "i2v_leak.toy",
    "PRESETS": "i2v_leak.presets",
    "Preset": "i2v_leak.presets",
    "RunningMoments": "i2v_leak.stats",
    "SVDFinetuneConfig": "i2v_leak.training",
    "TimeNoise": "i2v_leak.timenoise",
    "TimestepListDDIMScheduler": "i2v_leak.ddim",
    "analytic_init_moments_ve": "i2v_leak.analytic_init",
    "analytic_init_moments_vp": "i2v_leak.analytic_init",
    "analytic_init_ve": "i2v_leak.analytic_init",
    "analytic_init_vp": "i2v_leak.analytic_init",
    "cross_entropy_to_isotropic": "i2v_leak.analytic_init",
    "ddim_scheduler_for_start": "i2v_leak.ddim",
    "ddpm_timenoise_loss": "i2v_leak.losses",
    "detect_kind": "i2v_leak.adapters",
    "edm_sigmas": "i2v_leak.schedules",
    "edm_v_preconditioning": "i2v_leak.losses",
    "encode_video_latents": "i2v_leak.stats",
    "estimate_latent_stats": "i2v_leak.stats",
    "finetune_svd": "i2v_leak.training",
    "flow_motion_score": "i2v_leak.metrics",
    "generate_video": "i2v_leak.generation",
    "get_preset": "i2v_leak.presets",
    "image_alignment": "i2v_leak.metrics",
    "karras_sigmas": "i2v_leak.schedules",
    "kl_gaussian_to_isotropic": "i2v_leak.analytic_init",
    "load_pipeline": "i2v_leak.loading",
    "load_raft": "i2v_leak.metrics",
    "motion_score": "i2v_leak.metrics",
    "scaled_linear_alphas_cumprod": "i2v_leak.toy",
    "start_timesteps": "i2v_leak.schedules",
    "svd_timenoise_loss": "i2v_leak.losses",
    "temporal_consistency": "i2v_leak.metrics",
    "wrap_pipeline": "i2v_leak.adapters",
    "zero_terminal_snr": "i2v_leak.toy",
}


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

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
