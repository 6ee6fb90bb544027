"""Load what a user has: a Stable Diffusion pipeline (local folder, hub id when online, or "tiny" built offline) and
CLIP-like preference models ("tiny", a local transformers folder with both towers, or a hub id when online)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gen_common.checkpoint import resolve_pretrained
from gen_common.device import resolve_device, resolve_dtype

__all__ = ["TINY", "load_pipeline", "load_preference", "load_t5_branch", "resolve_model_path"]

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


def load_t5_branch(
    t5: str,
    adapter: str | None,
    pipe: Any,
    device: str | torch.device = "auto",
    max_length: int = 240,
    *,
    adapter_width: int | None = None,
    seed: int = 0,
) -> Any:
    """LongSD's T5 branch for ``pipe``: a transformers T5 encoder + its tokenizer (one folder or hub id, e.g. the
    release's ``t5-large``) and an adapter folder (`TextAdapter`: the released one, LaVi-Bridge's, or one saved by
    ``train-align``). ``adapter=None`` builds a fresh adapter (T5 width -> ``adapter_width`` (LaVi-Bridge's 896) ->
    the UNet's cross-attention width) under ``seed``, for stage 1. T5 runs in float32 unless the pipeline is bf16
    (fp16 T5 overflows); shapes are checked against T5's width and the UNet's cross-attention width."""
    from transformers import AutoTokenizer, T5EncoderModel

    from longalign.t5branch import LAVI_BRIDGE_WIDTH, T5Branch, TextAdapter

    dev = resolve_device(device)
    unet_dtype = next(pipe.unet.parameters()).dtype
    dt = torch.bfloat16 if unet_dtype == torch.bfloat16 else torch.float32
    t5_path = resolve_model_path(t5)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(t5_path))
        encoder = T5EncoderModel.from_pretrained(str(t5_path), torch_dtype=dt)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{t5_path} is not a T5 encoder folder with a tokenizer ({type(exc).__name__})"
        ) from exc
    if adapter is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            text_adapter = TextAdapter(
                encoder.config.d_model,
                adapter_width or LAVI_BRIDGE_WIDTH,
                pipe.unet.config.cross_attention_dim,
            )
    else:
        text_adapter = _load_adapter(resolve_model_path(adapter), dt)
    cfg = text_adapter.config
    if cfg.in_dim != encoder.config.d_model:
        raise ValueError(
            f"the adapter takes width {cfg.in_dim} but the T5 encoder gives {encoder.config.d_model}"
        )
    if cfg.out_dim != pipe.unet.config.cross_attention_dim:
        raise ValueError(
            f"the adapter gives width {cfg.out_dim} but the UNet attends to {pipe.unet.config.cross_attention_dim}"
        )
    encoder.requires_grad_(False)
    text_adapter.requires_grad_(
        False
    )  # frozen for sampling and stage 2; stage 1's AlignObjective unfreezes it
    return T5Branch(tokenizer, encoder.eval().to(dev), text_adapter.eval().to(dev), max_length=max_length)


def _load_adapter(path: Path, dtype: torch.dtype) -> Any:
    """A `TextAdapter` folder: the model its ``config.json`` describes, then its weights (safetensors, or an older
    download's ``.bin`` read with ``weights_only``) loaded strictly, every shape checked against that config
    (`gen_common.pretrained.load_into`: one line naming what does not fit)."""
    from gen_common.checkpoint import load_state_dict
    from gen_common.pretrained import load_into
    from longalign.t5branch import TextAdapter

    try:
        model = TextAdapter.from_config(TextAdapter.load_config(str(path)))
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not a TextAdapter folder ({type(exc).__name__})") from exc
    files = [path / f"diffusion_pytorch_model.{ext}" for ext in ("safetensors", "bin")]
    weights = next((f for f in files if f.is_file()), None)
    if weights is None:
        raise ValueError(
            f"{path} has no diffusion_pytorch_model.safetensors (or .bin): not a TextAdapter folder"
        )
    load_into(model, load_state_dict(weights), source=str(weights))
    # (nn.Module.to: diffusers' ModelMixin.to warns about modules to keep in float32, which the adapter has none of)
    return torch.nn.Module.to(model, dtype=dtype)
