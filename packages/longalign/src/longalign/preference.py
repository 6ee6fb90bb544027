"""The decomposed CLIP-style preference score (paper Sec. 3.2-3.3; official ``loss.py: dense_score``).

With unit image features f, text features t (the mean over a prompt's segments of unit segment features, not
renormalised) and the common text direction v (unit norm, the normalised batch mean of t), η = t·v and

    score(t, f) = t·f = (t − ηv)·f + η (v·f) = relevant + irrelevant.

The text-relevant part measures alignment; the text-irrelevant part (the projection on the direction every text
shares) scores visual aspects independent of the prompt and is what reward fine-tuning overfits. The reweighted
score is relevant + w · irrelevant (w = 1: the plain score; the paper uses w = 0.3).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

# transformers 4 and 5 return features differently; gen_common hides it
from gen_common.metrics.clip_score import clip_features
from longalign.segments import split_sentences

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "DecomposedPreference",
    "PreferenceOutput",
    "common_direction",
    "decompose_preference",
    "preference_score",
    "reward_crop",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def common_direction(
    text_features: torch.Tensor, gather: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> torch.Tensor:
    """v = normalize(mean_b t_b) (D,). With ``gather`` (e.g. ``accelerator.gather``) it is the normalised mean of
    the per-process means, as the release computes it."""
    if text_features.ndim != 2:
        raise ValueError(f"text_features must be (B, D), got {tuple(text_features.shape)}")
    mean = text_features.mean(dim=0)
    if gather is not None:
        mean = gather(mean[None]).mean(dim=0)
    return mean / mean.norm()


def decompose_preference(
    image_features: torch.Tensor, text_features: torch.Tensor, direction: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(relevant, irrelevant), each (B,): relevant = (t − ηv)·f and irrelevant = η (v·f) with η = t·v (Eq. 6)."""
    if image_features.shape != text_features.shape:
        raise ValueError(
            f"image features {tuple(image_features.shape)} and text features {tuple(text_features.shape)} differ"
        )
    v = direction.to(text_features)
    if v.ndim == 2:
        v = v[0]
    if v.shape != text_features.shape[-1:]:
        raise ValueError(
            f"direction has shape {tuple(direction.shape)}; expected ({text_features.shape[-1]},)"
        )
    eta = text_features @ v
    relevant = ((text_features - eta[:, None] * v) * image_features).sum(-1)
    irrelevant = eta * (image_features @ v)
    return relevant, irrelevant


def _all_same(text_features: torch.Tensor) -> bool:
    """Every row equal (a batch of 1, or one text repeated): the batch direction is then t itself, so t − ηv = 0."""
    return bool((text_features == text_features[:1]).all())


def preference_score(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    direction: torch.Tensor | None = None,
    *,
    weight: float = 0.3,
) -> torch.Tensor:
    """relevant + weight · irrelevant (B,) (Eq. 7); ``direction=None`` takes the batch's common direction."""
    if direction is None:
        if weight != 1.0 and _all_same(text_features):
            warnings.warn(
                "batch of 1 (or of one text repeated) with the batch direction: the text-relevant part is exactly "
                "0; give a direction (an EMA or a precomputed one)",
                UserWarning,
                stacklevel=2,
            )
        direction = common_direction(text_features)
    relevant, irrelevant = decompose_preference(image_features, text_features, direction)
    return relevant + weight * irrelevant


def reward_crop(
    images: torch.Tensor,
    size: int | tuple[int, int],
    *,
    crop_ratio: float = 504 / 512,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The release's reward preprocessing at any size: one random crop of ``crop_ratio`` of each side for the whole
    batch (504 of 512 px), resize to the model's ``size`` (bilinear, antialiased, as torchvision's Resize), then the
    model's normalisation. ``images`` (B, 3, H, W) in [0, 1]; differentiable."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W) in [0, 1], got {tuple(images.shape)}")
    h, w = images.shape[-2:]
    ch, cw = max(1, round(h * crop_ratio)), max(1, round(w * crop_ratio))
    top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
    x = images[:, :, top : top + ch, left : left + cw]
    size = (size, size) if isinstance(size, int) else tuple(size)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


@dataclass
class PreferenceOutput:
    """Per-sample ``score`` = relevant + weight · irrelevant, its two parts, and the direction used."""

    score: torch.Tensor
    relevant: torch.Tensor
    irrelevant: torch.Tensor
    direction: torch.Tensor
    weight: float


class DecomposedPreference(torch.nn.Module):
    """A CLIP-like preference model (Denscore, PickScore, CLIP-H, any transformers `CLIPModel`, or open_clip) scoring
    images against long texts with the decomposition (paper Sec. 3.2; official ``dense_score``).

    Text features are the mean over the prompt's segments of unit segment features; image features are unit
    features of `reward_crop` images. ``direction``: "batch" (the batch's common direction, gathered with
    ``gather`` across processes), "ema" (an exponential moving average of batch means, updated on each call in
    training mode), or a (D,) tensor. The model's weights are frozen; gradients flow to the images.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Callable[[list[str]], Any],
        *,
        backend: Literal["transformers", "open_clip"] = "transformers",
        image_size: int | tuple[int, int] = 224,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        crop_ratio: float = 504 / 512,
        weight: float = 0.3,
        direction: Literal["batch", "ema"] | torch.Tensor = "batch",
        ema_decay: float = 0.99,
        splitter: str | Callable[[str], list[str]] = "default",
        gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if backend not in ("transformers", "open_clip"):
            raise ValueError(f"unknown backend {backend!r}: use 'transformers' or 'open_clip'")
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.backend = backend
        self.image_size = image_size
        self.mean, self.std = tuple(mean), tuple(std)
        self.crop_ratio = crop_ratio
        self.weight = float(weight)
        self.splitter = splitter
        self.gather = gather
        self.ema_decay = float(ema_decay)
        if isinstance(direction, torch.Tensor):
            self.mode = "given"
            self.register_buffer("fixed_direction", direction.detach().flatten().float() / direction.norm())
        elif direction in ("batch", "ema"):
            self.mode = direction
        else:
            raise ValueError(f"direction must be 'batch', 'ema' or a tensor, got {direction!r}")
        self.register_buffer("ema_mean", torch.zeros(0))

    def train(self, mode: bool = True) -> DecomposedPreference:
        # The scoring model stays in eval mode (no dropout); `training` only gates EMA updates.
        super().train(mode)
        self.model.eval()
        return self

    # -- constructors ---------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str, **kwargs: Any) -> DecomposedPreference:
        """A transformers CLIP-like model from a local folder or (online) a hub id: both towers and a tokenizer
        (``luping-liu/Denscore``, ``yuvalkirstain/PickScore_v1`` with the CLIP-H tokenizer, ...)."""
        from transformers import AutoModel, AutoTokenizer

        from longalign.loading import resolve_model_path

        folder = resolve_model_path(path)
        model = AutoModel.from_pretrained(folder)
        if not (hasattr(model, "get_text_features") and hasattr(model, "get_image_features")):
            raise ValueError(f"{path} is not a two-tower CLIP-like model (needs a text and a vision tower)")
        tok = AutoTokenizer.from_pretrained(kwargs.pop("tokenizer", folder))
        vc = getattr(model.config, "vision_config", None)
        kwargs.setdefault("image_size", getattr(vc, "image_size", 224))
        return cls(model, tok, **kwargs)

    @classmethod
    def from_open_clip(cls, model: torch.nn.Module, tokenizer: Callable[..., torch.Tensor], **kwargs: Any):
        """An open_clip model and its tokenizer (``open_clip.get_tokenizer(name)``)."""
        size = getattr(getattr(model, "visual", None), "image_size", 224)
        kwargs.setdefault("image_size", tuple(size) if isinstance(size, (tuple, list)) else int(size))
        return cls(model, tokenizer, backend="open_clip", **kwargs)

    # -- features -------------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def image_features(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Unit image features (B, D) of images (B, 3, H, W) in [0, 1]; differentiable w.r.t. the images."""
        dtype = next(self.model.parameters()).dtype
        x = reward_crop(
            images,
            self.image_size,
            crop_ratio=self.crop_ratio,
            mean=self.mean,
            std=self.std,
            generator=generator,
        ).to(self.device, dtype)
        if self.backend == "open_clip":
            f = self.model.encode_image(x)
        else:
            f = clip_features(self.model, pixel_values=x)
        return f / f.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def segment_features(self, texts: list[str]) -> torch.Tensor:
        """Unit text features (S, D) of single segments (77-token window, padded to 77 as the release)."""
        if self.backend == "open_clip":
            t = self.model.encode_text(self.tokenizer(texts).to(self.device))
        else:
            tok = self.tokenizer(
                texts, padding="max_length", truncation=True, max_length=77, return_tensors="pt"
            )
            mask = tok.get("attention_mask")
            t = clip_features(
                self.model,
                input_ids=tok["input_ids"].to(self.device),
                attention_mask=None if mask is None else mask.to(self.device),
            )
        return t / t.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def text_features(self, prompts: Sequence[str]) -> torch.Tensor:
        """t_b (B, D): the mean over each prompt's segments of unit segment features (not renormalised)."""
        segs = [split_sentences(p, self.splitter) for p in prompts]
        feats = self.segment_features([s for ss in segs for s in ss])
        owner = torch.tensor([i for i, ss in enumerate(segs) for _ in ss], device=feats.device)
        out = torch.zeros(len(prompts), feats.shape[-1], device=feats.device, dtype=feats.dtype)
        out.index_add_(0, owner, feats)
        return out / torch.tensor([len(ss) for ss in segs], device=feats.device, dtype=feats.dtype)[:, None]

    def direction_for(self, text_features: torch.Tensor) -> torch.Tensor:
        """The common direction for this batch under the configured mode (updates the EMA in training mode)."""
        if self.mode == "given":
            return self.fixed_direction.to(text_features)
        batch_dir_mean = text_features.mean(0)
        if self.gather is not None:
            batch_dir_mean = self.gather(batch_dir_mean[None]).mean(0)
        if self.mode == "ema":
            if self.ema_mean.numel() == 0:
                self.ema_mean = batch_dir_mean.detach().float().clone()
            elif self.training:
                self.ema_mean.lerp_(batch_dir_mean.detach().float(), 1.0 - self.ema_decay)
            m = self.ema_mean.to(text_features)
            return m / m.norm()
        if self.gather is None and self.weight != 1.0 and _all_same(text_features):
            warnings.warn(
                "batch of 1 (or of one text repeated, e.g. a one-prompt training file) with direction='batch': the "
                "text-relevant part is exactly 0; use direction='ema' or a given direction, or varied prompts",
                UserWarning,
                stacklevel=3,
            )
        return batch_dir_mean / batch_dir_mean.norm()

    def forward(
        self,
        images: torch.Tensor,
        prompts: Sequence[str],
        *,
        weight: float | None = None,
        generator: torch.Generator | None = None,
    ) -> PreferenceOutput:
        if isinstance(prompts, str):
            prompts = [prompts]
        if len(prompts) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images for {len(prompts)} prompts")
        w = self.weight if weight is None else float(weight)
        t = self.text_features(list(prompts))
        f = self.image_features(images, generator=generator)
        v = self.direction_for(t)
        relevant, irrelevant = decompose_preference(f, t.to(f.dtype), v.to(f.dtype))
        return PreferenceOutput(relevant + w * irrelevant, relevant, irrelevant, v, w)
