"""Fine-tune a Stable Video Diffusion UNet with TimeNoise (Sec. 5) through gen_common's training loop.

The loop is accelerate's (``accelerate launch`` for several GPUs; bf16 autocast on CUDA by default), with exact
resume and atomic checkpoints from `gen_common.training`. Only the UNet trains; the VAE and the CLIP image encoder
are frozen and encode each clip on the fly (no_grad). Gradient checkpointing is on by default (the paper fine-tunes
a 1.5B-parameter UNet on 16 frames at 320×512). The result is also written as a diffusers ``unet/`` folder that
`UNetSpatioTemporalConditionModel.from_pretrained` (and a pipeline's ``unet=``) loads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gen_common.training import TrainConfig, TrainResult, train
from i2v_leak.losses import svd_timenoise_loss
from i2v_leak.stats import encode_video_latents
from i2v_leak.timenoise import TimeNoise

__all__ = ["SVDFinetuneConfig", "encode_condition", "finetune_svd"]


@dataclass(frozen=True)
class SVDFinetuneConfig:
    """What the SVD fine-tuning needs beyond the optimiser settings (official ``train.yaml`` defaults)."""

    beta_m: float = 15.0
    a: float = 5.0
    mu_max: float = 1.0
    timenoise: bool = True  # False: plain fine-tuning (clean condition, noise_aug_strength 0)
    fps: int = 3  # the clips' frame rate; the UNet sees fps − 1 like in diffusers' pipeline
    motion_bucket_id: int = 20
    P_mean: float = -1.2
    P_std: float = 1.2
    cfg_dropout: float = 0.1
    weight_sigma_data: float = 1.0  # EDM loss weight's σ_d (official train.yaml: 1; see svd_timenoise_loss)
    batch_size: int = 1
    gradient_checkpointing: bool = True

    def make_timenoise(self) -> TimeNoise | None:
        return TimeNoise(self.beta_m, self.a, self.mu_max) if self.timenoise else None


@torch.no_grad()
def encode_condition(pipe: Any, first_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(unscaled VAE latent mode, CLIP image embedding (B, 1, D)) of conditional frames (B, 3, H, W) in [−1, 1],
    as `StableVideoDiffusionPipeline` computes them at inference."""
    vae, enc = pipe.vae, pipe.image_encoder
    p = next(vae.parameters())
    cond = vae.encode(first_frames.to(p.device, p.dtype)).latent_dist.mode().float()
    q = next(enc.parameters())
    size = int(enc.config.image_size)
    img = F.interpolate((first_frames.float() + 1) / 2, size=(size, size), mode="bicubic", antialias=True)
    fe = pipe.feature_extractor
    mean = torch.tensor(fe.image_mean, device=img.device).view(1, 3, 1, 1)
    std = torch.tensor(fe.image_std, device=img.device).view(1, 3, 1, 1)
    emb = enc(((img.clamp(0, 1) - mean) / std).to(q.device, q.dtype)).image_embeds
    return cond, emb.unsqueeze(1).float()


def finetune_svd(
    pipe: Any,
    clips: Sequence[torch.Tensor] | Callable[[int, torch.Generator], torch.Tensor],
    config: SVDFinetuneConfig,
    train_config: TrainConfig,
    *,
    out_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    device: str | torch.device = "auto",
    progress: bool | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Fine-tune ``pipe.unet`` in place on video clips with the TimeNoise loss.

    ``clips``: a sequence of clips (F, 3, H, W) in [−1, 1] (a batch is drawn from it at random each step), or a
    function ``(step, generator) -> (B, F, 3, H, W)``. Returns gen_common's `TrainResult`. Checkpoints go to
    ``checkpoint_dir`` (default: ``out_dir``) and are resumed from there; with ``out_dir`` the final UNet is
    written to ``out_dir/unet``.
    """
    unet = pipe.unet
    for frozen in (pipe.vae, pipe.image_encoder):
        frozen.requires_grad_(False)
        frozen.eval()
    unet.requires_grad_(True)
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    timenoise = config.make_timenoise()

    if callable(clips):
        batch_fn = clips
    else:
        data = list(clips)
        if not data:
            raise ValueError("no training clips were given")
        shapes = {tuple(c.shape) for c in data}
        if len(shapes) != 1:
            raise ValueError(f"all clips must have one shape (F, 3, H, W); got {sorted(shapes)[:3]}")

        def batch_fn(step: int, generator: torch.Generator) -> torch.Tensor:
            idx = torch.randint(0, len(data), (config.batch_size,), generator=generator)
            return torch.stack([data[int(i)] for i in idx])

    def loss_fn(model: Any, video: torch.Tensor, generator: torch.Generator) -> Any:
        for frozen in (pipe.vae, pipe.image_encoder):
            if next(frozen.parameters()).device != video.device:
                frozen.to(video.device)
        latents = encode_video_latents(pipe.vae, video, generator=generator)
        cond, embeds = encode_condition(pipe, video[:, 0])
        return svd_timenoise_loss(
            model,
            latents.to(video.device),
            cond.to(video.device),
            embeds.to(video.device),
            timenoise,
            generator,
            fps_id=config.fps - 1,
            motion_bucket_id=config.motion_bucket_id,
            P_mean=config.P_mean,
            P_std=config.P_std,
            cfg_dropout=config.cfg_dropout,
            weight_sigma_data=config.weight_sigma_data,
        )

    from gen_common.config import config_to_dict

    result = train(
        unet,
        loss_fn,
        batch_fn,
        train_config,
        out_dir=checkpoint_dir if checkpoint_dir is not None else out_dir,
        resume=resume,
        device=device,
        progress=progress,
        on_log=on_log,
        extra_state={"finetune": config_to_dict(config)},
    )
    unet.eval()
    if config.gradient_checkpointing:
        unet.disable_gradient_checkpointing()
    if out_dir is not None:
        unet.save_pretrained(Path(out_dir) / "unet")
    return result
