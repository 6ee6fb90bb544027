"""Training a RADD model with one of the four losses on `gen_common.training.train` (accelerate: one process on a
CPU, ``accelerate launch`` on many GPUs; bf16 autocast on CUDA; EMA; gradient clipping; warmup + cosine/constant
schedule; atomic checkpoints and exact resume)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gen_common.training import TrainConfig, TrainResult, train
from radd.losses import get_loss

__all__ = ["loss_fn_for", "train_radd"]


def loss_fn_for(
    loss: str = "lambda_dce", **loss_kwargs: Any
) -> Callable[[Any, torch.Tensor, torch.Generator], Any]:
    """A `gen_common.training` loss function: the mean per-token DCE bound (nats/token) of the named loss."""
    fn = get_loss(loss)

    def loss_fn(
        model: Any, batch: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        per_seq = fn(model, batch, generator, **loss_kwargs)
        value = per_seq.mean() / batch.shape[1]
        return value, {"nats_per_token": float(value.detach())}

    return loss_fn


def train_radd(
    model: torch.nn.Module,
    batch_fn: Callable[[int, torch.Generator], torch.Tensor],
    config: TrainConfig,
    *,
    loss: str = "lambda_dce",
    out_dir: str | Path | None = None,
    resume: bool = True,
    device: torch.device | str = "auto",
    progress: bool | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
    stop_after: int | None = None,
    show_progress: bool | None = None,
    **loss_kwargs: Any,
) -> TrainResult:
    """Train ``model`` in place (it holds the EMA weights afterwards when EMA is on).

    ``show_progress`` is the deprecated name of ``progress``."""
    if show_progress is not None and progress is None:
        progress = show_progress
    return train(
        model,
        loss_fn_for(loss, **loss_kwargs),
        batch_fn,
        config,
        out_dir=out_dir,
        resume=resume,
        device=device,
        progress=progress,
        on_log=on_log,
        extra_state={"loss": loss},
        stop_after=stop_after,
    )
