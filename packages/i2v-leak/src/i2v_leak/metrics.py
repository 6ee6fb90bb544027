"""The paper's per-video metrics (Sec. 6): motion, temporal consistency and image alignment.

- `motion_score`: mean absolute difference of consecutive frames (0–255 scale); needs nothing.
- `flow_motion_score`: mean optical-flow magnitude (pixels per frame) from torchvision's RAFT, with weights the
  user has locally (torchvision's own download is never used).
- `temporal_consistency` / `image_alignment`: mean cosine similarity of CLIP image embeddings between consecutive
  frames, and between every frame and the conditional image, with a CLIP the user supplies
  (`ClipImageEncoder` wraps a transformers CLIP vision model, or pass any callable images → embeddings).

Videos are (F, 3, H, W) or (B, F, 3, H, W) in [0, 1] (diffusers' ``output_type="pt"``); scores are per video.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from gen_common.metrics import clip_features

__all__ = [
    "ClipImageEncoder",
    "flow_motion_score",
    "image_alignment",
    "load_raft",
    "motion_score",
    "temporal_consistency",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _batched(video: torch.Tensor) -> torch.Tensor:
    if video.ndim == 4:
        video = video.unsqueeze(0)
    if video.ndim != 5 or video.shape[2] != 3:
        raise ValueError(f"expected a video (F, 3, H, W) or (B, F, 3, H, W), got {tuple(video.shape)}")
    if video.shape[1] < 2:
        raise ValueError("motion and consistency need at least 2 frames")
    return video.float()


def motion_score(video: torch.Tensor) -> torch.Tensor:
    """Mean |x_{f+1} − x_f| over pixels, channels and frame pairs, in 0–255 units; one value per video."""
    v = _batched(video)
    return (v[:, 1:] - v[:, :-1]).abs().mean(dim=(1, 2, 3, 4)) * 255.0


def load_raft(
    weights: str | os.PathLike[str], size: str = "small", device: str | torch.device = "cpu"
) -> Any:
    """torchvision's RAFT (``size`` "small" or "large") with a local state dict (.pth via weights_only, or
    .safetensors). Nothing is downloaded."""
    try:
        from torchvision.models.optical_flow import raft_large, raft_small
    except ImportError as exc:
        raise ImportError('optical-flow motion needs torchvision: pip install "i2v-leak[flow]"') from exc
    from gen_common.checkpoint import load_state_dict
    from gen_common.pretrained import load_into

    build = {"small": raft_small, "large": raft_large}.get(size)
    if build is None:
        raise ValueError(f"unknown RAFT size {size!r}: use 'small' or 'large'")
    model = build(weights=None, progress=False)
    load_into(model, load_state_dict(weights))
    return model.eval().to(device)


@torch.no_grad()
def flow_motion_score(video: torch.Tensor, raft: Any, min_side: int = 128) -> torch.Tensor:
    """Mean optical-flow magnitude between consecutive frames (pixels at the evaluated size), per video.

    Frames are upsampled so the short side is at least ``min_side`` (RAFT's correlation pyramid needs it) and
    both sides are multiples of 8.
    """
    if min_side < 128:
        raise ValueError("RAFT needs frames of at least 128 pixels a side (its feature maps are 1/8 size)")
    v = _batched(video)
    b, f, _, h, w = v.shape
    scale = max(1.0, min_side / min(h, w))
    nh, nw = (round(h * scale / 8) * 8, round(w * scale / 8) * 8)
    dev = next(raft.parameters()).device
    frames = v.reshape(b * f, 3, h, w).to(dev)
    if (nh, nw) != (h, w):
        frames = F.interpolate(frames, size=(nh, nw), mode="bilinear", align_corners=False)
    frames = (frames * 2 - 1).reshape(b, f, 3, nh, nw)
    src = frames[:, :-1].reshape(-1, 3, nh, nw)
    dst = frames[:, 1:].reshape(-1, 3, nh, nw)
    flow = raft(src, dst)[-1]  # the last refinement
    mag = flow.norm(dim=1).mean(dim=(1, 2))
    return mag.reshape(b, f - 1).mean(1).cpu()


class ClipImageEncoder:
    """L2-normalised CLIP image embeddings of images (N, 3, H, W) in [0, 1].

    ``model`` is a transformers ``CLIPVisionModelWithProjection`` (``image_embeds``) or ``CLIPModel``
    (``get_image_features``); images are resized (bicubic, antialiased) to the model's ``image_size`` and
    normalised with CLIP's mean/std (or those of ``processor`` when given).
    """

    def __init__(self, model: Any, processor: Any = None) -> None:
        self.model = model.eval()
        cfg = getattr(model.config, "vision_config", model.config)
        self.size = int(cfg.image_size)
        mean = getattr(processor, "image_mean", None) or CLIP_MEAN
        std = getattr(processor, "image_std", None) or CLIP_STD
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu"):
        """A CLIP vision model from a local folder (or a hub id when online), loaded with transformers."""
        import transformers

        from gen_common.checkpoint import resolve_pretrained

        d = resolve_pretrained(name_or_path)
        try:
            model = transformers.CLIPVisionModelWithProjection.from_pretrained(d, local_files_only=True)
        except (OSError, ValueError):
            model = transformers.CLIPModel.from_pretrained(d, local_files_only=True)
        processor = None
        if (d / "preprocessor_config.json").is_file():
            processor = transformers.CLIPImageProcessor.from_pretrained(d, local_files_only=True)
        return cls(model.to(device), processor)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        p = next(self.model.parameters())
        x = images.float().clamp(0, 1)
        x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", antialias=True, align_corners=False)
        x = ((x - self.mean) / self.std).to(p.device, p.dtype)
        if hasattr(self.model, "get_image_features"):
            emb = clip_features(self.model, pixel_values=x)  # a tensor under transformers 4 and 5
        else:
            emb = self.model(pixel_values=x).image_embeds
        return F.normalize(emb.float(), dim=-1).cpu()


Encoder = Callable[[torch.Tensor], torch.Tensor]


def _embed(video: torch.Tensor, encoder: Encoder) -> torch.Tensor:
    b, f = video.shape[:2]
    e = encoder(video.reshape(b * f, *video.shape[2:]))
    return F.normalize(e.float(), dim=-1).reshape(b, f, -1)


def temporal_consistency(video: torch.Tensor, encoder: Encoder) -> torch.Tensor:
    """Mean cosine similarity of CLIP embeddings of consecutive frames, per video (1 = frames look alike)."""
    e = _embed(_batched(video), encoder)
    return (e[:, 1:] * e[:, :-1]).sum(-1).mean(1)


def image_alignment(video: torch.Tensor, image: torch.Tensor, encoder: Encoder) -> torch.Tensor:
    """Mean cosine similarity between each frame and the conditional image (3, H, W) or (B, 3, H, W), per video."""
    v = _batched(video)
    img = image.unsqueeze(0) if image.ndim == 3 else image
    if img.shape[0] not in (1, v.shape[0]):
        raise ValueError(f"{img.shape[0]} conditional images for {v.shape[0]} videos")
    e = _embed(v, encoder)
    ei = F.normalize(encoder(img.float()).float(), dim=-1)[:, None]
    return (e * ei).sum(-1).mean(1)
