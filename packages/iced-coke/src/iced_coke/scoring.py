"""Concept scores (paper Sec. 4.2; released utils/score.py + utils/clipscore.py).

CLIPScore (Hessel et al. 2021) as the release computes it: ``2.5 · max(cos(E_img, E_txt), 0)`` with the caption
prefixed by "A photo depicts ", images resized (bicubic, short side) and centre-cropped to the model's input size
and normalised with CLIP's mean/std. A concept's score is ``S = max(mean_n CLIPScore(img_n, concept),
mean_n CLIPScore(img_n, description))``.

Backends: open_clip (e.g. ViT-B-32 with OpenAI weights from a local file — OpenAI's CLIP, not the unrelated PyPI
``clip`` package) and transformers' ``CLIPModel``. Anything with ``score_pair(images, pair) -> (S1, S2)`` plugs in.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image

from gen_common.metrics.clip_score import CLIP_MEAN, CLIP_STD, clip_features
from iced_coke.pairs import ConceptPair

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "CLIPScore",
    "OpenCLIPBackend",
    "PairScorer",
    "ReferenceScorer",
    "TransformersCLIPBackend",
    "clip_preprocess",
    "clipscore_per_image",
]

PREFIX = "A photo depicts"


@runtime_checkable
class PairScorer(Protocol):
    """Anything that scores a batch of images against a concept pair: returns (S1, S2)."""

    def score_pair(self, images: Sequence[Image.Image], pair: ConceptPair) -> tuple[float, float]: ...


def clip_preprocess(images: Sequence[Image.Image], size: int) -> torch.Tensor:
    """Resize the short side to ``size`` (bicubic), centre-crop, RGB, [0, 1], CLIP-normalise (the release's
    ``CLIPImageDataset`` transform, written with PIL alone)."""
    out = []
    for im in images:
        w, h = im.size
        if w <= h:
            nw, nh = size, int(size * h / w)
        else:
            nw, nh = int(size * w / h), size
        im = im.resize((nw, nh), Image.BICUBIC)
        top, left = round((nh - size) / 2.0), round((nw - size) / 2.0)
        im = im.crop((left, top, left + size, top + size)).convert("RGB")
        out.append(torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1))
    x = torch.stack(out)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def clipscore_per_image(
    image_features: torch.Tensor, text_features: torch.Tensor, w: float = 2.5
) -> torch.Tensor:
    """``w · max(cos, 0)`` row by row (image n against caption n, or one caption broadcast to all images)."""
    i = image_features.double()
    t = text_features.double()
    i = i / i.norm(dim=-1, keepdim=True)
    t = t / t.norm(dim=-1, keepdim=True)
    return w * (i * t).sum(-1).clamp_min(0.0)


class OpenCLIPBackend:
    """open_clip model + tokenizer. ``from_pretrained("ViT-B-32", "/path/ViT-B-32.pt")`` loads OpenAI's weights
    from a local file (no download)."""

    def __init__(self, model: Any, tokenizer: Any, device: str | torch.device = "cpu") -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        size = getattr(model.visual, "image_size", 224)
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)

    @classmethod
    def from_pretrained(
        cls, arch: str = "ViT-B-32", weights: str | os.PathLike[str] | None = None, device="cpu"
    ):
        import open_clip

        if weights is not None and not os.path.isfile(weights):
            raise FileNotFoundError(
                f"CLIP weights {weights} not found; pass a local ViT-B-32 (OpenAI) checkpoint file"
            )
        model = open_clip.create_model(arch, pretrained=str(weights) if weights else None, device=device)
        return cls(model, open_clip.get_tokenizer(arch), device)

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        dtype = next(self.model.parameters()).dtype
        return self.model.encode_image(pixels.to(self.device, dtype)).float().cpu()

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return self.model.encode_text(self.tokenizer(list(texts)).to(self.device)).float().cpu()


class TransformersCLIPBackend:
    """transformers ``CLIPModel`` + ``CLIPTokenizer`` (e.g. ``openai/clip-vit-base-patch32`` from a local folder)."""

    def __init__(self, model: Any, tokenizer: Any, device: str | torch.device = "cpu") -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.image_size = int(model.config.vision_config.image_size)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], device="cpu"):
        import transformers

        return cls(
            transformers.CLIPModel.from_pretrained(path),
            transformers.CLIPTokenizer.from_pretrained(path),
            device,
        )

    # clip_features: the projected embedding as a tensor under transformers 4 and 5 alike
    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        dtype = next(self.model.parameters()).dtype
        return clip_features(self.model, pixel_values=pixels.to(self.device, dtype)).float().cpu()

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        tok = self.tokenizer(
            list(texts), padding="max_length", truncation=True, max_length=77, return_tensors="pt"
        )
        return clip_features(self.model, input_ids=tok.input_ids.to(self.device)).float().cpu()


class CLIPScore:
    """The paper's concept scorer: ``S_i = max(mean CLIPScore(img, concept_i), mean CLIPScore(img, describe_i))``."""

    def __init__(self, backend: Any, prefix: str = PREFIX, w: float = 2.5, batch_size: int = 64) -> None:
        self.backend = backend
        self.prefix = prefix if prefix.endswith(" ") or not prefix else prefix + " "
        self.w = w
        self.batch_size = batch_size

    def image_features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        if not images:
            raise ValueError("no images to score")
        feats = [
            self.backend.encode_images(
                clip_preprocess(images[i : i + self.batch_size], self.backend.image_size)
            )
            for i in range(0, len(images), self.batch_size)
        ]
        return torch.cat(feats)

    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        return self.backend.encode_texts([self.prefix + t for t in texts])

    def scores(self, images: Sequence[Image.Image], texts: Sequence[str]) -> torch.Tensor:
        """Mean CLIPScore of the images against each text: shape (len(texts),)."""
        img = self.image_features(images)
        txt = self.text_features(texts)
        return torch.stack([clipscore_per_image(img, t.unsqueeze(0), self.w).mean() for t in txt])

    def score_pair(self, images: Sequence[Image.Image], pair: ConceptPair) -> tuple[float, float]:
        s = self.scores(
            images, [pair.first_prompt, pair.first_describe, pair.second_prompt, pair.second_describe]
        )
        return float(max(s[0], s[1])), float(max(s[2], s[3]))


class ReferenceScorer:
    """An offline stand-in for CLIP (demos, benchmarks, tests). Image ``n`` is placed on the segment between
    reference image ``n`` of the full prompt (``b_n``) and of the first concept (``a_n``) — plain samples from the
    same seeds, so the comparison is paired: ``t_n = <x_n − b_n, a_n − b_n> / |a_n − b_n|²``, and
    ``S1 = lo + (hi − lo)·t``, ``S2 = lo + (hi − lo)·(2c − t)`` with ``t = mean_n t_n``: S1 grows and S2 falls as
    stage 1 gets more steps, and they cross where the images sit at fraction ``c`` (``crossing``) of the way."""

    def __init__(
        self,
        first_refs: Sequence[Image.Image],
        second_refs: Sequence[Image.Image],
        lo: float = 0.4,
        hi: float = 0.8,
        crossing: float = 0.8,
    ) -> None:
        self.a, self.b = self._vec(first_refs), self._vec(second_refs)
        if self.a.shape != self.b.shape:
            raise ValueError("first and second reference images must be paired (same count and size)")
        self.lo, self.hi, self.crossing = lo, hi, crossing

    @staticmethod
    def _vec(images: Sequence[Image.Image]) -> torch.Tensor:
        x = torch.stack(
            [torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0) for im in images]
        )
        return x.flatten(1)

    def position(self, images: Sequence[Image.Image]) -> float:
        v = self._vec(images)
        if v.shape != self.a.shape:
            raise ValueError(
                f"expected {self.a.shape[0]} images paired with the references, got {v.shape[0]}"
            )
        d = self.a - self.b
        t = ((v - self.b) * d).sum(1) / (d * d).sum(1).clamp_min(1e-12)
        return float(t.mean())

    def score_pair(self, images: Sequence[Image.Image], pair: ConceptPair) -> tuple[float, float]:
        t = self.position(images)
        span = self.hi - self.lo
        return self.lo + span * t, self.lo + span * (2 * self.crossing - t)
