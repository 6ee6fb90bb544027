"""Tiny offline image-to-video pipelines for tests and demos (``pip install 'gen-common[testing-diffusers]'``).

Stable Video Diffusion and I2VGen-XL at toy size, built from configs under a fixed seed, in the spirit of diffusers'
own fast pipeline tests: a 32×32 image, 4-channel latents at half resolution (16×16), a couple of frames. Nothing here
touches a hub; the CLIP tokenizer I2VGen-XL needs comes from `gen_common.testing.diffusers_tiny.clip_tokenizer`.

Every module is put in eval mode: modules built from a config start in training mode, where dropout would make
two runs with the same generator differ.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from gen_common.testing.diffusers_tiny import (
    _require,
    _seeded_build,
    clip_tokenizer,
    sd_ddim_scheduler,
    tiny_clip_text_model,
)

__all__ = [
    "TINY_SIZE",
    "tiny_clip_image_processor",
    "tiny_clip_vision_model",
    "tiny_i2vgenxl_components",
    "tiny_i2vgenxl_pipeline",
    "tiny_i2vgenxl_unet",
    "tiny_svd_components",
    "tiny_svd_pipeline",
    "tiny_svd_scheduler",
    "tiny_svd_unet",
    "tiny_temporal_vae",
]

TINY_SIZE = 32  # pixels; the tiny VAEs downsample by 2 (one DownEncoderBlock2D beyond the first), so latents are 16×16


def tiny_svd_unet(seed: int = 0, num_frames: int = 2, cross_attention_dim: int = 32) -> Any:
    """A `UNetSpatioTemporalConditionModel` with two blocks of (32, 64) channels (~1.8M parameters).

    ``in_channels=8``: SVD concatenates the 4-channel noisy latent with the 4-channel image latent.
    ``projection_class_embeddings_input_dim = 3 * addition_time_embed_dim``: the added time ids are
    (fps, motion bucket, noise augmentation strength).
    """
    diffusers = _require("diffusers")
    with _seeded_build(seed):
        return diffusers.UNetSpatioTemporalConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=TINY_SIZE,
            in_channels=8,
            out_channels=4,
            down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
            up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
            cross_attention_dim=cross_attention_dim,
            num_attention_heads=8,
            projection_class_embeddings_input_dim=96,
            addition_time_embed_dim=32,
            num_frames=num_frames,
        ).eval()


def tiny_temporal_vae(seed: int = 0) -> Any:
    """An `AutoencoderKLTemporalDecoder` (SVD's VAE) with (32, 64) channels and 4 latent channels."""
    diffusers = _require("diffusers")
    with _seeded_build(seed):
        return diffusers.AutoencoderKLTemporalDecoder(
            block_out_channels=(32, 64),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            latent_channels=4,
        ).eval()


def tiny_clip_vision_model(
    seed: int = 0,
    hidden_size: int = 32,
    projection_dim: int = 32,
    layers: int = 2,
    image_size: int = TINY_SIZE,
    patch_size: int = 1,
) -> Any:
    """A `CLIPVisionModelWithProjection` (default: 32×32 images with 1-pixel patches)."""
    transformers = _require("transformers")
    cfg = transformers.CLIPVisionConfig(
        hidden_size=hidden_size,
        projection_dim=projection_dim,
        num_hidden_layers=layers,
        num_attention_heads=4,
        image_size=image_size,
        intermediate_size=37,
        patch_size=patch_size,
    )
    with _seeded_build(seed):
        return transformers.CLIPVisionModelWithProjection(cfg).eval()


def tiny_clip_image_processor(size: int = TINY_SIZE) -> Any:
    """A `CLIPImageProcessor` that resizes and crops to ``size`` pixels (CLIP's mean/std normalisation)."""
    transformers = _require("transformers")
    return transformers.CLIPImageProcessor(crop_size=size, size=size)


def tiny_svd_scheduler() -> Any:
    """SVD's `EulerDiscreteScheduler` configuration: v-prediction, continuous timesteps (0.25·ln σ), Karras sigmas
    from σ_min = 0.002 to σ_max = 700."""
    diffusers = _require("diffusers")
    return diffusers.EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        use_karras_sigmas=True,
    )


def tiny_svd_components(seed: int = 0, num_frames: int = 2) -> dict[str, Any]:
    """The components of a `StableVideoDiffusionPipeline` at toy size.

    The image encoder takes 224×224 inputs in 14-pixel patches (256 tokens) like the real one: the stock pipeline
    resizes PIL images to 224×224 before CLIP whatever the model's configured size.
    """
    return {
        "vae": tiny_temporal_vae(seed),
        "image_encoder": tiny_clip_vision_model(seed, image_size=224, patch_size=14),
        "unet": tiny_svd_unet(seed, num_frames=num_frames),
        "scheduler": tiny_svd_scheduler(),
        "feature_extractor": tiny_clip_image_processor(224),
    }


def tiny_svd_pipeline(seed: int = 0, device: str | torch.device = "cpu", num_frames: int = 2) -> Any:
    """A complete offline `StableVideoDiffusionPipeline` on ``device`` (progress bar off).

    Call it with ``height=32, width=32, num_frames=2`` (its UNet's default frame count is ``num_frames``).
    """
    diffusers = _require("diffusers")
    pipe = diffusers.StableVideoDiffusionPipeline(**tiny_svd_components(seed, num_frames=num_frames))
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def tiny_i2vgenxl_unet(seed: int = 0, cross_attention_dim: int = 32) -> Any:
    """An `I2VGenXLUNet` with two blocks of (32, 64) channels (~1.3M parameters)."""
    diffusers = _require("diffusers")
    with _seeded_build(seed):
        return diffusers.I2VGenXLUNet(
            block_out_channels=(32, 64),
            layers_per_block=1,
            sample_size=TINY_SIZE,
            in_channels=4,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
            up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
            cross_attention_dim=cross_attention_dim,
            attention_head_dim=4,
            num_attention_heads=None,
            norm_num_groups=32,
        ).eval()


def tiny_i2vgenxl_components(
    seed: int = 0, tokenizer_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """The components of an `I2VGenXLPipeline` at toy size (DDIM scheduler with SD's scaled-linear betas)."""
    diffusers = _require("diffusers")
    with _seeded_build(seed):
        vae = diffusers.AutoencoderKL(
            block_out_channels=(32, 64),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
            sample_size=TINY_SIZE,
            norm_num_groups=32,
        ).eval()
    scheduler = sd_ddim_scheduler()
    return {
        "vae": vae,
        "text_encoder": tiny_clip_text_model(hidden_size=32, seed=seed),
        "tokenizer": clip_tokenizer(tokenizer_dir),
        "image_encoder": tiny_clip_vision_model(seed),
        "feature_extractor": tiny_clip_image_processor(),
        "unet": tiny_i2vgenxl_unet(seed),
        "scheduler": scheduler,
    }


def tiny_i2vgenxl_pipeline(seed: int = 0, device: str | torch.device = "cpu") -> Any:
    """A complete offline `I2VGenXLPipeline` on ``device`` (progress bar off).

    With transformers >= 5 the stock pipeline's default ``clip_skip=1`` path fails (it reaches for
    ``text_encoder.text_model``, which transformers 5 removed); pass ``clip_skip=None`` or precomputed
    ``prompt_embeds``.
    """
    diffusers = _require("diffusers")
    pipe = diffusers.I2VGenXLPipeline(**tiny_i2vgenxl_components(seed))
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
