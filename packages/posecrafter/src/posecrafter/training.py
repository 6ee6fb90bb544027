"""One-shot tuning on one training video (ControlVideo's recipe, as PoseCrafter uses it): ε-prediction MSE on the
video's frames jointly (one timestep per step, shared by the frames), ControlNet fed each frame's pose.

Trainable: the precursor's pose rule (`PRECURSOR_TRAINABLE`: in the UNet ``attn1.to_out`` and the temporal
attention with its conv; in the ControlNet ``attn1.to_out``). Everything else has ``requires_grad`` off — the
precursor leaves it on for all parameters and clips the norm over all of them, so frozen parameters' gradients
pile up (nothing zeroes them: they are not in the optimizer) and inflate the clipping norm.

The loop is `gen_common.training.train`: accelerate, bf16 autocast on CUDA, gradient clipping, atomic checkpoints
holding only the trained tensors, and exact resume.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gen_common.training import TrainConfig, TrainResult, train
from posecrafter.attention import PRECURSOR_TRAINABLE, frame_kwargs, select_trainable
from posecrafter.pipeline import PoseCrafterPipeline, save_posecrafter_weights
from posecrafter.poses import Pose

__all__ = ["OneShotConfig", "OneShotModel", "train_one_shot"]


@dataclass(frozen=True)
class OneShotConfig:
    """Defaults are the precursor's pose configuration (lr 3e-5, 1500 steps, fp16 there; bf16 here on CUDA)."""

    steps: int = 1500
    lr: float = 3e-5
    grad_clip: float = 1.0
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    gradient_checkpointing: bool = True
    checkpoint_every: int = 250
    controlnet_scale: float = 1.0
    trainable: tuple[str, ...] = PRECURSOR_TRAINABLE
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("steps must be >= 1")
        if not self.lr > 0:
            raise ValueError("lr must be > 0")


class OneShotModel(nn.Module):
    """The UNet and ControlNet under training, with the video's latents, text embedding and pose images as
    non-persistent buffers. Its state dict holds only the trained tensors, so checkpoints are small."""

    def __init__(
        self,
        unet: nn.Module,
        controlnet: nn.Module,
        latents: torch.Tensor,
        text: torch.Tensor,
        cond: torch.Tensor,
        alphas_cumprod: torch.Tensor,
        trainable: Sequence[str],
        controlnet_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.unet, self.controlnet = unet, controlnet
        self.register_buffer("latents", latents, persistent=False)
        self.register_buffer("text", text, persistent=False)
        self.register_buffer("cond", cond, persistent=False)
        self.register_buffer("alphas_cumprod", alphas_cumprod.float(), persistent=False)
        self.trained = select_trainable({"unet": unet, "controlnet": controlnet}, trainable)
        self.controlnet_scale = controlnet_scale

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {n: p.detach() for n, p in self.trained.items()}

    def load_state_dict(
        self, state: dict[str, torch.Tensor], strict: bool = True, assign: bool = False
    ) -> Any:  # type: ignore[override]
        missing, unexpected = set(self.trained) - set(state), set(state) - set(self.trained)
        if missing or unexpected:
            from gen_common.checkpoint import CheckpointError

            raise CheckpointError(
                f"checkpoint does not match the trainable set ({len(missing)} missing, {len(unexpected)} unexpected)"
            )
        with torch.no_grad():
            for n, p in self.trained.items():
                p.copy_(state[n].to(p.dtype))

    def forward(self, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The loss of one step: noise the video's latents at timestep ``t`` (shared by the frames) and regress
        the noise."""
        a = self.alphas_cumprod[t].to(self.latents.dtype)
        noisy = a.sqrt() * self.latents + (1 - a).sqrt() * noise
        n = noisy.shape[0]
        kw = frame_kwargs(n)
        tt = t.expand(n)
        down, mid = self.controlnet(
            noisy, tt, encoder_hidden_states=self.text.expand(n, -1, -1), controlnet_cond=self.cond,
            conditioning_scale=self.controlnet_scale, return_dict=False, cross_attention_kwargs=kw,
        )  # fmt: skip
        pred = self.unet(
            noisy, tt, encoder_hidden_states=self.text.expand(n, -1, -1), down_block_additional_residuals=down,
            mid_block_additional_residual=mid, cross_attention_kwargs=kw,
        ).sample  # fmt: skip
        return F.mse_loss(pred.float(), noise.float())


def train_one_shot(
    pipe: PoseCrafterPipeline,
    frames: np.ndarray,
    poses: Sequence[Pose],
    prompt: str,
    config: OneShotConfig | None = None,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    device: torch.device | str = "auto",
    progress: bool | None = None,
    stop_after: int | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Tune ``pipe``'s UNet and ControlNet in place on one video (``frames`` (F, H, W, 3) uint8 and its poses).

    With ``out_dir``, checkpoints go to ``out_dir/checkpoints`` (resumed when present) and the trained modules
    to ``out_dir/weights`` (`save_posecrafter_weights`, loadable into a stock pipeline).
    """
    cfg = config or OneShotConfig()
    if len(frames) != len(poses):
        raise ValueError(f"{len(frames)} training frames but {len(poses)} poses")
    if len(frames) < 1:
        raise ValueError("the training video has no frames")
    h, w = np.asarray(frames).shape[1:3]
    latents = pipe.encode_frames(frames).float()
    text = pipe.encode_prompt(prompt).float()
    cond = pipe.condition(poses, h, w).float()
    alphas = pipe.c.scheduler.alphas_cumprod
    n_train = int(pipe.c.scheduler.config.num_train_timesteps)
    if cfg.gradient_checkpointing:
        pipe.c.unet.enable_gradient_checkpointing()
        pipe.c.controlnet.enable_gradient_checkpointing()
    model = OneShotModel(
        pipe.c.unet, pipe.c.controlnet, latents, text, cond, alphas, cfg.trainable, cfg.controlnet_scale
    )
    shape = tuple(latents.shape)

    def batch_fn(step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {
            "noise": torch.randn(shape, generator=gen),
            "t": torch.randint(0, n_train, (1,), generator=gen),
        }

    def loss_fn(m: nn.Module, batch: dict[str, torch.Tensor], gen: torch.Generator) -> torch.Tensor:
        return m(batch["noise"], batch["t"])

    tc = TrainConfig(
        steps=cfg.steps,
        lr=cfg.lr,
        grad_clip=cfg.grad_clip,
        mixed_precision=cfg.mixed_precision,
        checkpoint_every=cfg.checkpoint_every,
        log_every=max(1, min(50, cfg.steps // 10)),
        seed=cfg.seed,
    )
    out = Path(out_dir) if out_dir is not None else None
    try:
        result = train(
            model, loss_fn, batch_fn, tc, out_dir=None if out is None else out / "checkpoints",
            device=device, progress=progress, stop_after=stop_after, on_log=on_log,
        )  # fmt: skip
    finally:
        if cfg.gradient_checkpointing:
            pipe.c.unet.disable_gradient_checkpointing()
            pipe.c.controlnet.disable_gradient_checkpointing()
        pipe.c.unet.eval()
        pipe.c.controlnet.eval()
        pipe.c.unet.requires_grad_(False)
        pipe.c.controlnet.requires_grad_(False)
    if out is not None and result.steps == cfg.steps:
        save_posecrafter_weights(pipe.c.unet, pipe.c.controlnet, out / "weights", cfg.trainable)
    return result
