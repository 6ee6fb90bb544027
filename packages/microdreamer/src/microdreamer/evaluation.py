"""The paper's image-to-3D metric (clip_sim.py / scripts/cal_sim.py): the mean cosine similarity between the CLIP
image embedding of the input view and those of 8 renders at evenly spaced azimuths (elevation 0, white
background). The paper uses laion/CLIP-ViT-bigG-14 on renders of the exported mesh; any CLIP image tower works
here (a transformers CLIPModel / CLIPVisionModelWithProjection, or a callable images → features)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from microdreamer.cameras import orbit_cameras

__all__ = ["clip_image_features", "clip_similarity"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@torch.no_grad()
def clip_image_features(encoder, images: torch.Tensor) -> torch.Tensor:
    """Unit-norm CLIP features of images [B, 3, H, W] in [0, 1] (resize to the tower's size, CLIP normalisation)."""
    if callable(encoder) and not isinstance(encoder, torch.nn.Module):
        feats = encoder(images)
    else:
        size = int(getattr(encoder.config, "vision_config", encoder.config).image_size)
        dev = next(encoder.parameters()).device
        x = F.interpolate(images.to(dev).float(), (size, size), mode="bicubic", align_corners=False).clamp(
            0, 1
        )
        x = (x - torch.tensor(CLIP_MEAN, device=dev).view(1, 3, 1, 1)) / torch.tensor(
            CLIP_STD, device=dev
        ).view(1, 3, 1, 1)
        if hasattr(encoder, "get_image_features"):
            feats = encoder.get_image_features(pixel_values=x)
            feats = getattr(feats, "pooler_output", feats)
        else:
            feats = encoder(pixel_values=x).image_embeds
    return F.normalize(feats.float(), dim=-1)


@torch.no_grad()
def clip_similarity(
    model,
    reference: torch.Tensor,
    encoder: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor],
    *,
    views: int = 8,
    size: int = 256,
    radius: float = 2.0,
    elevation: float = 0.0,
) -> float:
    """Mean cos(CLIP(reference), CLIP(render_i)) over ``views`` azimuths 0, 360/views, … (the paper's Table III)."""
    cams = orbit_cameras([elevation] * views, [i * 360 / views for i in range(views)], radius, size=size)
    renders = model.render(cams.to(model.xyz.device)).image
    ref = clip_image_features(encoder, reference[:1])
    return float((clip_image_features(encoder, renders) @ ref.T).mean())
