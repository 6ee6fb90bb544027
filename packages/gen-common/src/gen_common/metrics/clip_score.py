"""CLIPScore (Hessel et al. 2021) with the user's CLIP model, computed as torchmetrics does.

score(I, T) = w · max(cos(E_I, E_T), 0), where E_I, E_T are the projected CLIP image and text embeddings. The
processor prepares both inputs exactly as torchmetrics' ``clip_score`` does (``processor(images=[...])`` and
``processor(text=[...], padding=True)``, text cut to the model's positions).

Conventions: ``scale=100`` is torchmetrics' (and most text-to-image papers'); ``scale=2.5`` is the CLIP-S of
Hessel et al. torchmetrics clamps the *mean* at 0 (max(mean(100·cos), 0)); ``clamp="mean"`` reproduces that,
the default ``clamp="sample"`` clamps each pair as the paper defines it. The two agree whenever no cosine is
negative, as with real CLIP models.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import torch

from gen_common.metrics._checks import images4d, require

__all__ = ["CLIP_MEAN", "CLIP_STD", "clip_features", "clip_score"]

# OpenAI CLIP's image normalisation (its preprocess and every CLIP checkpoint's image processor)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _as_tensor(out: Any) -> torch.Tensor:
    # transformers >= 5 returns an output object whose pooler_output is the projected embedding; 4.x a tensor.
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def clip_features(
    model: Any,
    pixel_values: torch.Tensor | None = None,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Projected (not normalised) CLIP embeddings from a transformers `CLIPModel` as tensors, under transformers
    4 (``get_*_features`` return tensors) and 5 (they return an output object; the embedding is its
    ``pooler_output``): the image embedding for ``pixel_values``, the text embedding for ``input_ids``, or
    ``(image, text)`` when both are given."""
    if pixel_values is None and input_ids is None:
        raise ValueError("clip_features needs pixel_values, input_ids or both")
    image = text = None
    if pixel_values is not None:
        image = _as_tensor(model.get_image_features(pixel_values=pixel_values))
    if input_ids is not None:
        text = _as_tensor(model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))
    if image is not None and text is not None:
        return image, text
    return image if image is not None else text


@functools.lru_cache(maxsize=4)
def _default_processor(image_size: int) -> Any:
    """CLIP's standard preprocessing at ``image_size`` and CLIP's BPE tokenizer (rebuilt offline from the
    vocabulary open_clip ships): what OpenAI's and LAION's CLIP checkpoints use."""
    transformers = require("transformers", "clip_score without a processor")
    require("open_clip", "clip_score without a processor (CLIP's vocabulary)")
    from gen_common.testing.diffusers_tiny import clip_tokenizer

    image_processor = transformers.CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    return transformers.CLIPProcessor(image_processor=image_processor, tokenizer=clip_tokenizer())


def _device(model: Any) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def clip_score(
    images: Any,
    texts: Sequence[str] | str,
    model: Any,
    processor: Any = None,
    *,
    scale: float = 100.0,
    clamp: Literal["sample", "mean"] = "sample",
    reduction: Literal["mean", "none"] = "mean",
    batch_size: int = 64,
) -> torch.Tensor:
    """CLIPScore of images (N, 3, H, W) — uint8 in [0, 255] or float in [0, 1] — against N captions.

    ``model`` is a transformers `CLIPModel` (or anything with ``get_image_features``/``get_text_features``),
    ``processor`` its `CLIPProcessor`; without one, CLIP's standard preprocessing at the model's image size and
    CLIP's BPE tokenizer are used (right for OpenAI/LAION CLIPs; pass the checkpoint's own processor otherwise).
    Returns the mean (a 0-d tensor) or, with ``reduction="none"``, the N
    per-pair scores (``clamp="sample"`` only).
    """
    x = images4d(images, "images")
    captions = [texts] if isinstance(texts, str) else list(texts)
    if len(captions) != x.shape[0]:
        raise ValueError(f"{x.shape[0]} images but {len(captions)} captions: pass one caption per image")
    if not all(isinstance(c, str) for c in captions):
        raise ValueError("captions must be strings")
    if x.is_floating_point() and (x.min() < 0 or x.max() > 1):
        raise ValueError("float images must be in [0, 1] (or pass uint8 images in [0, 255])")
    if reduction not in ("mean", "none") or clamp not in ("sample", "mean"):
        raise ValueError("reduction is 'mean' or 'none'; clamp is 'sample' or 'mean'")
    if reduction == "none" and clamp == "mean":
        raise ValueError("clamp='mean' clamps the mean only: use reduction='mean'")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive count, got {batch_size}")
    if processor is None:
        processor = _default_processor(int(model.config.vision_config.image_size))
    dev = _device(model)
    max_len = getattr(getattr(model.config, "text_config", None), "max_position_embeddings", None)
    cos = []
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start : start + batch_size].cpu()
        # float images are already in [0, 1]: the processor's 1/255 rescale is for uint8 / 0–255 inputs
        kw = {"do_rescale": False} if chunk.is_floating_point() else {}
        pixels = processor(images=list(chunk), return_tensors="pt", **kw)["pixel_values"]
        tokens = processor(text=captions[start : start + batch_size], return_tensors="pt", padding=True)
        ids, mask = tokens["input_ids"], tokens["attention_mask"]
        if max_len is not None and ids.shape[-1] > max_len:
            ids, mask = ids[..., :max_len], mask[..., :max_len]
        e_img, e_txt = clip_features(model, pixels.to(dev), ids.to(dev), mask.to(dev))
        e_img = e_img / e_img.norm(p=2, dim=-1, keepdim=True)
        e_txt = e_txt / e_txt.norm(p=2, dim=-1, keepdim=True)
        cos.append((e_img * e_txt).sum(-1).float().cpu())
    c = torch.cat(cos)
    if clamp == "mean":
        return (scale * c.mean()).clamp(min=0)
    s = scale * c.clamp(min=0)
    return s if reduction == "none" else s.mean()
