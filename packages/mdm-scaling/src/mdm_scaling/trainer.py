"""Matched training of an MDM and an ARM: gen_common's loop (accelerate when installed, so ``accelerate launch``
scales it to many GPUs; bf16 autocast on CUDA; atomic checkpoints and exact resume) with the paper's optimiser
(AdamW, betas (0.9, 0.95), weight decay 0.1, 1% warmup, cosine to lr/10, clip 1; App. B.1) and the objective
chosen by architecture."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from gen_common.training import TrainConfig, TrainResult, train
from mdm_scaling.config import ModelConfig
from mdm_scaling.objectives import loss_fn_for

__all__ = ["TrainSettings", "train_lm", "train_pair"]


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 1000
    lr: float = 2e-4  # the paper's peak lr; tiny CPU models want ~3e-3
    min_lr_ratio: float = 0.1  # 2e-4 → 2e-5
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_fraction: float = 0.01
    grad_clip: float = 1.0
    mixed_precision: str = "auto"  # bf16 on CUDA
    log_every: int = 50
    checkpoint_every: int = 0
    seed: int = 0

    def to_train_config(self) -> TrainConfig:
        return TrainConfig(
            steps=self.steps,
            lr=self.lr,
            weight_decay=self.weight_decay,
            betas=self.betas,
            warmup_steps=max(1, round(self.warmup_fraction * self.steps)) if self.steps else 0,
            schedule="cosine",
            min_lr_ratio=self.min_lr_ratio,
            grad_clip=self.grad_clip,
            mixed_precision=self.mixed_precision,  # type: ignore[arg-type]
            log_every=self.log_every,
            checkpoint_every=self.checkpoint_every,
            seed=self.seed,
        )


def train_lm(
    model: torch.nn.Module,
    batch_fn: Callable[[int, torch.Generator], torch.Tensor],
    settings: TrainSettings,
    *,
    loss_fn: Callable[[Any, Any, torch.Generator], Any] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    device: torch.device | str = "auto",
    show_progress: bool | None = None,
    resume: bool = True,
    compile: bool = False,
) -> TrainResult:
    """Train ``model`` in place on ``batch_fn``'s (B, L + 1) windows; the MDM loss or the ARM loss by the model's
    class (or an explicit ``loss_fn``). ``compile=True`` compiles the forward pass (``torch.compile``; pays on a
    GPU) while parameter names, checkpoints and ``save_pretrained`` stay those of the plain module."""
    if compile:
        model.forward = torch.compile(model.forward, dynamic=True)  # type: ignore[method-assign]
    return train(
        model,
        loss_fn or loss_fn_for(model),
        batch_fn,
        settings.to_train_config(),
        out_dir=out_dir,
        device=device,
        show_progress=show_progress,
        resume=resume,
    )


def train_pair(
    batch_fn: Callable[[int, torch.Generator], torch.Tensor],
    config: ModelConfig,
    settings: TrainSettings,
    *,
    archs: tuple[str, ...] = ("mdm", "arm"),
    steps: dict[str, int] | None = None,
    device: torch.device | str = "auto",
    show_progress: bool | None = None,
) -> dict[str, torch.nn.Module]:
    """Train an MDM and an ARM of the same config, initial weights and batches (``steps`` may differ per arch)."""
    from dataclasses import replace

    from gen_common.device import resolve_device
    from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM

    classes = {"mdm": MaskedDiffusionLM, "arm": AutoregressiveLM}
    out = {}
    for arch in archs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            model = classes[arch](config)
        s = replace(settings, steps=(steps or {}).get(arch, settings.steps))
        train_lm(model, batch_fn, s, device=device, show_progress=show_progress)
        out[arch] = model.to(resolve_device(device)).eval()
    return out
