"""Tiny offline models for tests, the demo and `--model tiny` (weights from configs under a fixed seed)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["tiny_clip_model"]


def tiny_clip_model(seed: int = 0, dim: int = 32, projection_dim: int = 16, image_size: int = 32) -> Any:
    """A two-tower transformers `CLIPModel` at toy size with CLIP's vocabulary (use gen_common's `clip_tokenizer`)."""
    from transformers import CLIPConfig, CLIPModel

    text = {
        "vocab_size": 49408,
        "hidden_size": dim,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 77,
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 49407,
    }
    vision = {
        "hidden_size": dim,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": image_size,
        "patch_size": 8,
    }
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CLIPModel(cfg).eval()
