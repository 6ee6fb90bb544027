"""Matched training of an MDM and an ARM: gen_common's loop (accelerate when installed, so ``accelerate launch``
scales it to many GPUs; bf16 autocast on CUDA; atomic checkpoints and exact resume) with the paper's optimiser
(`paper_config`: AdamW, betas (0.9, 0.95), weight decay 0.1, 1% warmup, cosine to lr/10, clip 1; App. B.1) and the objective
chosen by architecture."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

from gen_common.config import TrainConfig
from gen_common.training import TrainResult, train
from mdm_scaling.config import ModelConfig
from mdm_scaling.objectives import loss_fn_for

__all__ = ["TrainConfig", "paper_config", "train_lm", "train_pair"]


def paper_config(
    steps: int = 1000, lr: float = 2e-4, *, warmup_fraction: float = 0.01, **overrides: Any
) -> TrainConfig:
    """The paper's optimiser (App. B.1) as a `gen_common.config.TrainConfig`: AdamW with betas (0.9, 0.95) and
    weight decay 0.1, ``warmup_fraction`` of the steps of linear warmup, cosine decay to lr/10, gradient clip 1.
    The paper's peak lr is 2e-4; tiny CPU models want ~1e-2. ``overrides`` replace any other field."""
    fields: dict[str, Any] = dict(
        steps=steps,
        lr=lr,
        weight_decay=0.1,
        betas=(0.9, 0.95),
        warmup_steps=max(1, round(warmup_fraction * steps)),
        schedule="cosine",
        min_lr_ratio=0.1,
        grad_clip=1.0,
    )
    fields.update(overrides)
    return TrainConfig(**fields)


def train_lm(
    model: torch.nn.Module,
    batch_fn: Callable[[int, torch.Generator], torch.Tensor],
    config: TrainConfig,
    *,
    loss_fn: Callable[[Any, Any, torch.Generator], Any] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    device: torch.device | str = "auto",
    progress: bool | None = None,
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
        config,
        out_dir=out_dir,
        device=device,
        progress=progress,
        resume=resume,
    )


def train_pair(
    batch_fn: Callable[[int, torch.Generator], torch.Tensor],
    config: ModelConfig,
    train_config: TrainConfig,
    *,
    archs: tuple[str, ...] = ("mdm", "arm"),
    steps: dict[str, int] | None = None,
    device: torch.device | str = "auto",
    progress: bool | None = None,
) -> dict[str, torch.nn.Module]:
    """Train an MDM and an ARM of the same config, initial weights and batches (``steps`` may differ per arch)."""
    from dataclasses import replace

    from gen_common.device import resolve_device
    from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM

    classes = {"mdm": MaskedDiffusionLM, "arm": AutoregressiveLM}
    out = {}
    for arch in archs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train_config.seed)
            model = classes[arch](config)
        n = (steps or {}).get(arch, train_config.steps)
        # the warmup keeps its fraction of the run when an arch trains for a different number of steps
        warmup = (
            max(1, round(train_config.warmup_steps * n / train_config.steps))
            if train_config.warmup_steps
            else 0
        )
        s = replace(train_config, steps=n, warmup_steps=warmup)
        train_lm(model, batch_fn, s, device=device, progress=progress)
        out[arch] = model.to(resolve_device(device)).eval()
    return out
