"""Tiny offline SDXL base and refiner pipelines (``pip install 'gen-common[testing-diffusers]'``).

Built like diffusers' own fast SDXL tests: two CLIP text encoders of width 32 (the second a
`CLIPTextModelWithProjection` whose pooled, projected output feeds the UNet's added "text_time" embedding), a
UNet whose cross-attention reads their concatenation (64), and the tiny VAE (32 px images, 16 px latents).
Every module is in eval mode and initialised under the seed without touching the global RNG.

Base and refiner:

- `tiny_sdxl_img2img_pipeline(seed)` is refiner-style, as the real SDXL refiner: no first text encoder
  (``text_encoder=None``, ``tokenizer=None``), cross-attention over ``text_encoder_2`` alone (32) and
  ``requires_aesthetics_score=True`` (5 added time ids instead of 6). Its UNet is therefore a different network
  from the base's; its VAE and ``text_encoder_2`` come from the same builders and equal the base's of the same seed.
- `tiny_sdxl_img2img_pipeline(from_base=pipe)` shares the base's modules (same objects: UNet, VAE, both encoders,
  scheduler config) with ``requires_aesthetics_score=False``. Then base with ``denoising_end=f`` followed by it
  with ``denoising_start=f`` reproduces the base's full run: the ensemble-of-experts hand-off identity.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from gen_common.testing.diffusers_tiny import (
    CLIP_MAX_LENGTH,
    CLIP_VOCAB_SIZE,
    _require,
    _seeded_build,
    clip_tokenizer,
    tiny_clip_text_model,
    tiny_vae,
)

__all__ = [
    "tiny_clip_text_model_with_projection",
    "tiny_sdxl_components",
    "tiny_sdxl_img2img_components",
    "tiny_sdxl_img2img_pipeline",
    "tiny_sdxl_pipeline",
    "tiny_sdxl_scheduler",
    "tiny_sdxl_unet",
]

TIME_EMBED_DIM = 8  # per added time id (original size, crop, target size or aesthetic score)
TEXT_WIDTH = 32


def tiny_clip_text_model_with_projection(seed: int = 0, hidden_size: int = TEXT_WIDTH) -> Any:
    """SDXL's second text encoder at toy size: a `CLIPTextModelWithProjection` (``text_embeds`` of ``hidden_size``)."""
    transformers = _require("transformers")
    cfg = transformers.CLIPTextConfig(
        vocab_size=CLIP_VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=CLIP_MAX_LENGTH,
        projection_dim=hidden_size,
        hidden_act="gelu",
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )
    with _seeded_build(seed + 2):  # not the same stream as the first encoder's (also built under `seed`)
        return transformers.CLIPTextModelWithProjection(cfg).eval()


def tiny_sdxl_unet(seed: int = 0, refiner: bool = False) -> Any:
    """SDXL's UNet at toy size: ``addition_embed_type="text_time"``.

    Base: cross-attention over both encoders (64), 6 time ids → 6·8 + 32 = 80 added-embedding inputs.
    Refiner: cross-attention over ``text_encoder_2`` only (32), 5 time ids (with the aesthetic score) → 72.
    """
    diffusers = _require("diffusers")
    n_time_ids = 5 if refiner else 6
    with _seeded_build(seed + (3 if refiner else 0)):
        return diffusers.UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=16,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=TIME_EMBED_DIM,
            transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=n_time_ids * TIME_EMBED_DIM + TEXT_WIDTH,
            cross_attention_dim=TEXT_WIDTH if refiner else 2 * TEXT_WIDTH,
            norm_num_groups=32,
        ).eval()


def tiny_sdxl_scheduler() -> Any:
    """SDXL's `EulerDiscreteScheduler` configuration (scaled-linear betas, "leading" spacing, steps offset 1)."""
    diffusers = _require("diffusers")
    return diffusers.EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="leading",
        interpolation_type="linear",
        prediction_type="epsilon",
    )


def tiny_sdxl_components(
    seed: int = 0, tokenizer_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """The components of a `StableDiffusionXLPipeline` at toy size (both tokenizers are CLIP's BPE)."""
    tokenizer = clip_tokenizer(tokenizer_dir)
    return {
        "unet": tiny_sdxl_unet(seed),
        "vae": tiny_vae(seed=seed),
        "text_encoder": tiny_clip_text_model(seed=seed),
        "text_encoder_2": tiny_clip_text_model_with_projection(seed),
        "tokenizer": tokenizer,
        # One object for both: the pipeline only calls them, and building CLIP's BPE tables costs ~0.7 s each.
        "tokenizer_2": tokenizer,
        "scheduler": tiny_sdxl_scheduler(),
        "image_encoder": None,
        "feature_extractor": None,
    }


def tiny_sdxl_img2img_components(
    seed: int = 0, tokenizer_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """The components of a refiner-style `StableDiffusionXLImg2ImgPipeline` (no first text encoder)."""
    return {
        "unet": tiny_sdxl_unet(seed, refiner=True),
        "vae": tiny_vae(seed=seed),
        "text_encoder": None,
        "text_encoder_2": tiny_clip_text_model_with_projection(seed),
        "tokenizer": None,
        "tokenizer_2": clip_tokenizer(tokenizer_dir),
        "scheduler": tiny_sdxl_scheduler(),
        "image_encoder": None,
        "feature_extractor": None,
    }


def _finish(pipe: Any, device: str | torch.device) -> Any:
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def tiny_sdxl_pipeline(seed: int = 0, device: str | torch.device = "cpu") -> Any:
    """A complete offline `StableDiffusionXLPipeline` on ``device``; call it with ``height=32, width=32``."""
    diffusers = _require("diffusers")
    # The default invisible watermark needs an extra package and changes pixels; tests want the raw decode.
    pipe = diffusers.StableDiffusionXLPipeline(**tiny_sdxl_components(seed), add_watermarker=False)
    return _finish(pipe, device)


def tiny_sdxl_img2img_pipeline(
    seed: int = 0, device: str | torch.device = "cpu", from_base: Any = None
) -> Any:
    """A `StableDiffusionXLImg2ImgPipeline` on ``device`` (see the module docstring).

    ``from_base=None``: refiner-style, own UNet, ``requires_aesthetics_score=True``.
    ``from_base=pipe``: the base pipeline's own modules (shared, not copied) with ``requires_aesthetics_score=False``,
    for an exact base → refiner hand-off (``denoising_end`` / ``denoising_start``); ``seed`` is then unused.
    """
    diffusers = _require("diffusers")
    if from_base is not None:
        components = {k: v for k, v in from_base.components.items() if k in _IMG2IMG_KEYS}
        # A scheduler of its own (same config): set_timesteps on one pipeline must not move the other's state.
        components["scheduler"] = type(from_base.scheduler).from_config(from_base.scheduler.config)
        pipe = diffusers.StableDiffusionXLImg2ImgPipeline(
            **components, requires_aesthetics_score=False, add_watermarker=False
        )
    else:
        pipe = diffusers.StableDiffusionXLImg2ImgPipeline(
            **tiny_sdxl_img2img_components(seed), requires_aesthetics_score=True, add_watermarker=False
        )
    return _finish(pipe, device)


_IMG2IMG_KEYS = (
    "vae",
    "text_encoder",
    "text_encoder_2",
    "tokenizer",
    "tokenizer_2",
    "unet",
    "scheduler",
    "image_encoder",
    "feature_extractor",
)
