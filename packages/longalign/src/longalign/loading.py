"""Load what a user has: a Stable Diffusion pipeline (local folder, hub id when online, or "tiny" built offline) and
CLIP-like preference models ("tiny", a local transformers folder with both towers, or a hub id when online)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gen_common.checkpoint import resolve_pretrained
from gen_common.device import resolve_device, resolve_dtype

__all__ = ["TINY", "load_pipeline", "load_preference", "resolve_model_path"]

TINY = "tiny"


def resolve_model_path(name_or_path: str) -> Path:
    """A local folder for a folder or hub id (`OfflineError` for a hub id while offline, with what to do)."""
    return resolve_pretrained(name_or_path)


def load_pipeline(
    model: str, device: str | torch.device = "auto", dtype: str | None = None, seed: int = 0
) -> Any:
    """A `StableDiffusionPipeline` ("tiny" builds gen_common's offline toy pipeline), progress bars off."""
    from diffusers import StableDiffusionPipeline

    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    if model == TINY:
        from longalign.toys import tiny_sd_pipeline

        pipe = tiny_sd_pipeline(seed=seed)
    else:
        path = resolve_model_path(model)
        if not (path / "model_index.json").is_file():
            raise ValueError(f"{path} is not a diffusers pipeline folder (no model_index.json)")
        pipe = StableDiffusionPipeline.from_pretrained(
            path, safety_checker=None, requires_safety_checker=False, torch_dtype=dt
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(dev, dtype=dt) if dt != torch.float32 or dev.type != "cpu" else pipe


def load_preference(model: str, device: str | torch.device = "auto", **kwargs: Any) -> Any:
    """A `DecomposedPreference` from "tiny" (offline toy CLIP), a local folder or a hub id (transformers CLIP-like
    model with both towers and a tokenizer)."""
    from longalign.preference import DecomposedPreference

    dev = resolve_device(device)
    if model == TINY:
        from gen_common.testing.clip_tiny import tiny_clip_model
        from longalign.toys import tiny_tokenizer

        clip = tiny_clip_model(seed=kwargs.pop("seed", 0))
        kwargs.setdefault("image_size", clip.config.vision_config.image_size)
        return DecomposedPreference(clip, tiny_tokenizer(), **kwargs).to(dev)
    kwargs.pop("seed", None)
    path = resolve_model_path(model)
    cfg = path / "config.json"
    if not cfg.is_file():
        raise ValueError(
            f"{path} has no config.json: a preference model folder needs a transformers CLIP model"
        )
    import json

    conf = json.loads(cfg.read_text(encoding="utf-8"))
    if "text_config" not in conf or "vision_config" not in conf:
        raise ValueError(
            f"{path} lacks a text or a vision tower (config.json needs text_config and vision_config)"
        )
    return DecomposedPreference.from_pretrained(str(path), **kwargs).to(dev)
