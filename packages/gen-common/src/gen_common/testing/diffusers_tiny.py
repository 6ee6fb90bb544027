"""Tiny offline diffusers / transformers components for tests and demos (``pip install 'gen-common[testing-diffusers]'``).

Nothing here touches a hub: the CLIP tokenizer is rebuilt from the BPE vocabulary that open_clip ships (ids equal
open_clip's), and every model is built from a config at toy size under a fixed seed.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "clip_tokenizer",
    "sd_ddim_scheduler",
    "tiny_clip_text_model",
    "tiny_sd_components",
    "tiny_sd_pipeline",
    "tiny_unet",
    "tiny_vae",
    "write_clip_vocab",
]

CLIP_VOCAB_SIZE = 49408
CLIP_MAX_LENGTH = 77


@contextlib.contextmanager
def _seeded_build(seed: int) -> Iterator[None]:
    """Initialise weights under ``seed`` without touching the caller's global RNG stream (restored on exit):
    whole-process seeding stays an explicit call (`gen_common.seed_everything`)."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # models are initialised on the CPU
        yield


def _require(extra_mod: str) -> Any:
    import importlib

    try:
        return importlib.import_module(extra_mod)
    except ImportError as exc:
        raise ImportError(
            f"{extra_mod} is needed for the tiny offline components: pip install 'gen-common[testing-diffusers]'"
        ) from exc


def write_clip_vocab(directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``vocab.json`` and ``merges.txt`` of CLIP's BPE (from open_clip's bundled file) into ``directory``."""
    open_clip_tok = _require("open_clip.tokenizer")
    bpe_path = Path(open_clip_tok.default_bpe())
    with gzip.open(bpe_path) as fh:
        lines = fh.read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]  # CLIP uses exactly this many merges; the file has a header line
    byte_chars = list(open_clip_tok.bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    if len(vocab) != CLIP_VOCAB_SIZE:
        raise RuntimeError(f"unexpected CLIP vocabulary size {len(vocab)} from {bpe_path}")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    vocab_file, merges_file = d / "vocab.json", d / "merges.txt"
    vocab_file.write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return vocab_file, merges_file


def clip_tokenizer(directory: str | os.PathLike[str] | None = None) -> Any:
    """A real `transformers.CLIPTokenizer` built offline. ``model_max_length=77`` is required: without it the
    tokenizer overflows the text encoder's position table."""
    transformers = _require("transformers")
    if directory is None:
        # The tokenizer reads both files into memory at construction, so a throwaway folder need not outlive it.
        with tempfile.TemporaryDirectory(prefix="clip-vocab-") as tmp:
            return clip_tokenizer(tmp)
    vocab_file, merges_file = write_clip_vocab(Path(directory))
    return transformers.CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=CLIP_MAX_LENGTH)


def tiny_clip_text_model(hidden_size: int = 32, seed: int = 0) -> Any:
    transformers = _require("transformers")
    cfg = transformers.CLIPTextConfig(
        vocab_size=CLIP_VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=CLIP_MAX_LENGTH,
        projection_dim=hidden_size,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )
    with _seeded_build(seed):
        return transformers.CLIPTextModel(cfg).eval()


def tiny_unet(cross_attention_dim: int = 32, sample_size: int = 8, seed: int = 0) -> Any:
    diffusers = _require("diffusers")
    with _seeded_build(seed):
        return diffusers.UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=sample_size,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=cross_attention_dim,
            norm_num_groups=32,
            attention_head_dim=8,
        ).eval()


def tiny_vae(seed: int = 0) -> Any:
    diffusers = _require("diffusers")
    with _seeded_build(seed):
        return diffusers.AutoencoderKL(
            block_out_channels=(32, 64),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
            norm_num_groups=32,
        ).eval()


def sd_ddim_scheduler() -> Any:
    """Stable Diffusion 1.x's `DDIMScheduler` configuration (scaled-linear betas 0.00085 → 0.012, no sample
    clipping, ᾱ_final from the last training step, steps offset 1), as its ``scheduler_config.json`` has it."""
    diffusers = _require("diffusers")
    return diffusers.DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def tiny_sd_components(seed: int = 0, tokenizer_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The components of a Stable Diffusion pipeline at toy size (a 32-px image is a 16-px latent)."""
    scheduler = sd_ddim_scheduler()
    return {
        "unet": tiny_unet(seed=seed),
        "vae": tiny_vae(seed=seed),
        "text_encoder": tiny_clip_text_model(seed=seed),
        "tokenizer": clip_tokenizer(tokenizer_dir),
        "scheduler": scheduler,
        "safety_checker": None,
        "feature_extractor": None,
        "image_encoder": None,
    }


def tiny_sd_pipeline(seed: int = 0, device: str | torch.device = "cpu") -> Any:
    """A complete offline `StableDiffusionPipeline` (no safety checker) on ``device``."""
    diffusers = _require("diffusers")
    pipe = diffusers.StableDiffusionPipeline(**tiny_sd_components(seed), requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
