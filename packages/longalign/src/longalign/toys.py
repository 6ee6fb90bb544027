"""Tiny offline models for tests, the demo and `--model tiny` (weights from configs under a fixed seed)."""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["tiny_clip_model", "tiny_sd_pipeline", "tiny_tokenizer"]


@functools.lru_cache(maxsize=1)
def tiny_tokenizer() -> Any:
    """gen_common's offline CLIP tokenizer, built once per process (building it parses CLIP's 49k merges)."""
    from gen_common.testing.diffusers_tiny import clip_tokenizer

    return clip_tokenizer()


def tiny_sd_pipeline(seed: int = 0) -> Any:
    """gen_common's tiny offline `StableDiffusionPipeline` with the shared tokenizer (fresh weights every call)."""
    import diffusers

    from gen_common.testing import diffusers_tiny as dt

    pipe = diffusers.StableDiffusionPipeline(
        unet=dt.tiny_unet(seed=seed),
        vae=dt.tiny_vae(seed=seed),
        text_encoder=dt.tiny_clip_text_model(seed=seed),
        tokenizer=tiny_tokenizer(),
        scheduler=dt.sd_ddim_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_clip_model(seed: int = 0, dim: int = 32, projection_dim: int = 16, image_size: int = 32) -> Any:
    """A two-tower transformers `CLIPModel` at toy size with CLIP's vocabulary: gen_common's
    `gen_common.testing.clip_tiny.tiny_clip_model` (the same weights under the same seed; width 32 only)."""
    from gen_common.testing.clip_tiny import tiny_clip_model as shared

    if dim != 32:
        raise ValueError(f"the tiny CLIP has width 32 (gen_common.testing.clip_tiny), not {dim}")
    return shared(seed=seed, projection_dim=projection_dim, image_size=image_size)
