"""A tiny offline CLIP (transformers and open_clip) for tests (``pip install 'gen-common[testing-diffusers]'``).

- `tiny_clip_model`: a transformers `CLIPModel` with paired text and vision towers (width 32, 2 layers, 32-px
  images in 8-px patches) and ``projection_dim`` (16) outputs; `tiny_clip_processor` is the matching
  `CLIPProcessor` (CLIP's real BPE tokenizer, rebuilt offline, and an image processor at 32 px).
- `tiny_open_clip_model`: ``(model, preprocess, tokenizer)`` from open_clip with `TINY_OPEN_CLIP_CONFIG`
  (``pretrained=None``: nothing is downloaded; the tokenizer is open_clip's bundled BPE).
- `clip_features`: text/image embeddings as tensors for either transformers API. Under transformers >= 5
  ``CLIPModel.get_text_features`` / ``get_image_features`` return an output object whose ``pooler_output`` holds the
  projected embedding; under 4.x they return that tensor. `clip_features` hides the difference (it lives in
  `gen_common.metrics.clip_score`, importable without any extra, and is re-exported here).
"""

from __future__ import annotations

import copy
from typing import Any

from gen_common.metrics.clip_score import clip_features  # re-exported: it needs no extra
from gen_common.testing.diffusers_tiny import (
    CLIP_MAX_LENGTH,
    CLIP_VOCAB_SIZE,
    _require,
    _seeded_build,
    clip_tokenizer,
)

__all__ = [
    "TINY_CLIP_IMAGE_SIZE",
    "TINY_OPEN_CLIP_CONFIG",
    "clip_features",
    "tiny_clip_model",
    "tiny_clip_processor",
    "tiny_open_clip_model",
]

TINY_CLIP_IMAGE_SIZE = 32

# open_clip's model-config schema (as in its model_configs/*.json), at toy size. Register it under a name with
# open_clip.add_model_config if `create_model("name")` is wanted; `tiny_open_clip_model` builds it directly.
TINY_OPEN_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 16,
    "vision_cfg": {
        "image_size": TINY_CLIP_IMAGE_SIZE,
        "layers": 2,
        "width": 32,
        "patch_size": 8,
        "head_width": 8,
    },
    "text_cfg": {
        "context_length": CLIP_MAX_LENGTH,
        "vocab_size": CLIP_VOCAB_SIZE,
        "width": 32,
        "heads": 4,
        "layers": 2,
    },
}


def tiny_clip_model(seed: int = 0, projection_dim: int = 16, image_size: int = TINY_CLIP_IMAGE_SIZE) -> Any:
    """A transformers `CLIPModel` (text and vision towers of width 32, 2 layers each), in eval mode."""
    transformers = _require("transformers")
    text = transformers.CLIPTextConfig(
        vocab_size=CLIP_VOCAB_SIZE,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=CLIP_MAX_LENGTH,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )
    vision = transformers.CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=image_size,
        patch_size=8,
    )
    cfg = transformers.CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=projection_dim
    )
    with _seeded_build(seed):
        return transformers.CLIPModel(cfg).eval()


def tiny_clip_processor(image_size: int = TINY_CLIP_IMAGE_SIZE) -> Any:
    """A `CLIPProcessor` built offline: CLIP's tokenizer (77 tokens) and an image processor that resizes and
    center-crops to ``image_size`` with CLIP's mean/std."""
    transformers = _require("transformers")
    image_processor = transformers.CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    return transformers.CLIPProcessor(image_processor=image_processor, tokenizer=clip_tokenizer())


def tiny_open_clip_model(seed: int = 0, config: dict[str, Any] | None = None) -> tuple[Any, Any, Any]:
    """``(model, preprocess, tokenizer)``: an open_clip `CLIP` built from ``config`` (default
    `TINY_OPEN_CLIP_CONFIG`) under ``seed``, its eval-time image transform and open_clip's CLIP tokenizer."""
    open_clip = _require("open_clip")
    cfg = copy.deepcopy(TINY_OPEN_CLIP_CONFIG if config is None else config)
    with _seeded_build(seed):
        model = open_clip.CLIP(**cfg).eval()
    preprocess = open_clip.image_transform(
        cfg["vision_cfg"]["image_size"],
        is_train=False,
        mean=open_clip.OPENAI_DATASET_MEAN,
        std=open_clip.OPENAI_DATASET_STD,
    )
    tokenizer = open_clip.SimpleTokenizer(context_length=cfg["text_cfg"]["context_length"])
    return model, preprocess, tokenizer
