"""Load a stock image-to-video pipeline: a local diffusers folder, a hub id (when online), or ``"tiny"`` (built
offline at toy size from configs, for trying the package without downloads), with the GPU memory options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gen_common.checkpoint import OfflineError, resolve_pretrained
from gen_common.device import resolve_device, resolve_dtype

__all__ = ["PIPELINES", "LoadOptions", "load_pipeline"]

PIPELINES = ("svd", "i2vgenxl")
TINY = "tiny"


@dataclass(frozen=True)
class LoadOptions:
    """GPU-memory and precision options. ``dtype`` None: bf16 on CUDA, float32 elsewhere."""

    dtype: str | None = None
    variant: str | None = None  # e.g. "fp16" for stabilityai's half-precision weight files
    cpu_offload: bool = False  # accelerate's model CPU offload (one component on the GPU at a time)
    vae_slicing: bool = False  # decode frames one at a time (AutoencoderKL only; SVD uses decode_chunk_size)
    vae_tiling: bool = False  # decode in tiles (AutoencoderKL only)
    seed: int = 0  # for the tiny pipelines


def _pipeline_class(kind: str) -> Any:
    import diffusers

    if kind == "svd":
        return diffusers.StableVideoDiffusionPipeline
    if kind == "i2vgenxl":
        return diffusers.I2VGenXLPipeline
    raise ValueError(f"unknown pipeline {kind!r}: use one of {PIPELINES}")


def _dtype_kwarg() -> str:
    """Recent diffusers renamed ``torch_dtype`` to ``dtype`` (the old name warns); older ones know only
    ``torch_dtype``."""
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


def load_pipeline(
    kind: str, model: str, device: str | torch.device = "auto", options: LoadOptions | None = None
) -> Any:
    """A ready pipeline (``kind`` "svd" or "i2vgenxl") from ``model``: "tiny", a local folder, or a hub id.

    A hub id while offline (HF_HUB_OFFLINE / GEN_OFFLINE, or no network) raises `OfflineError` saying how to get
    a local copy. Progress bars of the pipeline are left to the caller.
    """
    opts = options or LoadOptions()
    cls = _pipeline_class(kind)
    try:
        dev = resolve_device(device)
    except RuntimeError as exc:  # e.g. --device cuda without CUDA: the user's to fix, not a crash
        raise ValueError(str(exc)) from exc
    dtype = resolve_dtype(opts.dtype, dev)
    if model == TINY:
        from gen_common.testing import video_tiny

        pipe = (
            video_tiny.tiny_svd_pipeline(opts.seed)
            if kind == "svd"
            else video_tiny.tiny_i2vgenxl_pipeline(opts.seed)
        )
        if dtype != torch.float32:  # built in float32; a no-op cast would only make diffusers warn
            pipe = pipe.to(dtype=dtype)
    else:
        path = resolve_pretrained(model)
        try:
            pipe = cls.from_pretrained(
                path, **{_dtype_kwarg(): dtype}, variant=opts.variant, local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise OfflineError(
                f"could not load a {cls.__name__} from {path}: {exc}. Point --model at a diffusers folder "
                f"(with model_index.json) for this pipeline"
            ) from exc
    vae = pipe.vae
    if opts.vae_slicing and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    if opts.vae_tiling and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
    if opts.cpu_offload:
        if dev.type != "cuda":
            raise ValueError("--cpu-offload needs a CUDA device")
        pipe.enable_model_cpu_offload(device=dev)
    else:
        pipe = pipe.to(dev)
    return pipe
