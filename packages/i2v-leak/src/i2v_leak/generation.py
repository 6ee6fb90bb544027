"""One generation call for either pipeline from a typed config: what the CLI's ``generate``/``compare``, the demo
and the benchmark share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from i2v_leak.adapters import CILPipeline

__all__ = ["GenerationConfig", "generate_video", "pipeline_kwargs"]


@dataclass(frozen=True)
class GenerationConfig:
    height: int
    width: int
    num_frames: int
    steps: int
    guidance: float | None = None  # SVD: max_guidance_scale (min stays 1); I2VGen-XL: guidance_scale
    fps: int | None = None  # SVD: fps (the pipeline feeds fps − 1); I2VGen-XL: target_fps
    motion_bucket_id: int | None = None  # SVD only
    noise_aug_strength: float | None = None  # SVD only
    eta: float | None = None  # I2VGen-XL's DDIM η
    prompt: str = ""  # I2VGen-XL only
    negative_prompt: str | None = None
    decode_chunk_size: int | None = None


def pipeline_kwargs(kind: str, cfg: GenerationConfig) -> dict[str, Any]:
    """Keyword arguments of the stock pipeline's ``__call__`` for ``cfg`` (unset options keep its defaults)."""
    kw: dict[str, Any] = {
        "height": cfg.height,
        "width": cfg.width,
        "num_frames": cfg.num_frames,
        "num_inference_steps": cfg.steps,
        "output_type": "pt",
    }
    if cfg.decode_chunk_size is not None:
        kw["decode_chunk_size"] = cfg.decode_chunk_size
    if kind == "svd":
        for src, dst in (
            ("guidance", "max_guidance_scale"),
            ("fps", "fps"),
            ("motion_bucket_id", "motion_bucket_id"),
            ("noise_aug_strength", "noise_aug_strength"),
        ):
            if getattr(cfg, src) is not None:
                kw[dst] = getattr(cfg, src)
    else:
        kw["prompt"] = cfg.prompt
        for src, dst in (
            ("guidance", "guidance_scale"),
            ("fps", "target_fps"),
            ("eta", "eta"),
            ("negative_prompt", "negative_prompt"),
        ):
            if getattr(cfg, src) is not None:
                kw[dst] = getattr(cfg, src)
    return kw


def generate_video(
    cil: CILPipeline, image: Any, cfg: GenerationConfig, seed: int, *, fix: bool = True
) -> torch.Tensor:
    """One video (F, 3, H, W) in [0, 1] for ``image`` (PIL), with (``fix=True``) or without the fixes.

    The pipeline's noise comes from a CPU generator seeded with ``seed``; the global torch seed is set too,
    because I2VGen-XL samples its image latent without the generator.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    out = cil(image=image, generator=generator, fix=fix, **pipeline_kwargs(cil.kind, cfg))
    frames = out.frames
    if isinstance(frames, list):
        frames = torch.as_tensor(frames[0])
    video = frames[0] if frames.ndim == 5 else frames
    return video.detach().float().cpu()
