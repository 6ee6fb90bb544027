"""A small BFN trainer on `gen_common.training.train` (accelerate when installed, EMA, atomic checkpoints, exact
resume) with the continuous-time losses of `bfn_solver.losses`, plus the offline data sets the CLI trains on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch

from bfn_solver.losses import continuous_time_loss, discrete_time_loss
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
from bfn_solver.toy import CategoricalJoint, GaussianMixture
from gen_common.seeding import randint
from gen_common.training import TrainConfig, TrainResult, train

__all__ = ["shapes_dataset", "text_dataset", "toy_source", "train_bfn"]

DataSource = torch.Tensor | Callable[[int, torch.Generator], torch.Tensor]


def _batch_fn(data: DataSource, batch_size: int) -> Callable[[int, torch.Generator], torch.Tensor]:
    if callable(data) and not isinstance(data, torch.Tensor):

        def from_sampler(step: int, gen: torch.Generator) -> torch.Tensor:
            return data(batch_size, gen)

        return from_sampler
    if not isinstance(data, torch.Tensor) or data.ndim < 2 or data.shape[0] == 0:
        raise ValueError("data must be a non-empty tensor (N, ...) or a sampler (n, generator) -> tensor")

    def from_tensor(step: int, gen: torch.Generator) -> torch.Tensor:
        return data[randint(0, data.shape[0], (batch_size,), gen)]

    return from_tensor


def train_bfn(
    model: torch.nn.Module,
    data: DataSource,
    schedule: ContinuousSchedule | DiscreteSchedule,
    config: TrainConfig,
    *,
    batch_size: int = 256,
    out_dir: str | Path | None = None,
    device: torch.device | str = "auto",
    clip: float | None = 1.0,
    progress: bool | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train a BFN in place with the continuous-time loss matching ``schedule``'s data type.

    ``data``: a tensor of examples (N, ...) — values in [−1, 1] for continuous data, class ids for discrete
    data — or a sampler ``(n, generator) -> batch``. The model must follow the package convention
    (``model(mu, t) -> ε̂`` or ``model(theta, t) -> logits``, t of shape (B,)).
    """
    if isinstance(schedule, ContinuousSchedule):

        def loss_fn(m: torch.nn.Module, x: torch.Tensor, gen: torch.Generator) -> Any:
            return continuous_time_loss(m, x.float(), schedule, gen, clip=clip).mean()

    elif isinstance(schedule, DiscreteSchedule):

        def loss_fn(m: torch.nn.Module, x: torch.Tensor, gen: torch.Generator) -> Any:
            return discrete_time_loss(m, x.long(), schedule, gen).mean()

    else:
        raise TypeError(
            f"schedule must be a ContinuousSchedule or DiscreteSchedule, got {type(schedule).__name__}"
        )
    return train(
        model,
        loss_fn,
        _batch_fn(data, batch_size),
        config,
        out_dir=out_dir,
        device=device,
        progress=progress,
        on_log=on_log,
    )


def shapes_dataset(n: int = 2048, size: int = 8, seed: int = 0) -> torch.Tensor:
    """Offline small images (n, size, size, 3) in [−1, 1], channels-last like the nnaisense networks: a
    filled square or disc of a random colour, position and radius on a dark background."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    cx = torch.randint(2, size - 2, (n, 1, 1), generator=g)
    cy = torch.randint(2, size - 2, (n, 1, 1), generator=g)
    r = torch.randint(1, max(2, size // 3), (n, 1, 1), generator=g)
    disc = torch.rand(n, 1, 1, generator=g) < 0.5
    inside = torch.where(
        disc, (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2, ((xx - cx).abs() <= r) & ((yy - cy).abs() <= r)
    )
    colour = torch.rand(n, 1, 1, 3, generator=g) * 1.6 - 0.6
    return (
        torch.where(inside[..., None], colour, torch.full_like(colour, -0.8)).expand(n, size, size, 3).clone()
    )


def text_dataset(length: int = 32, max_chars: int | None = 200_000) -> tuple[torch.Tensor, Any]:
    """Offline character windows (N, length) from the standard library's documentation text
    (gen_common.text.bundled_corpus), and the tokenizer."""
    from gen_common.text import CharTokenizer, bundled_corpus

    text = bundled_corpus(max_chars)
    tok = CharTokenizer.from_text(text)
    ids = torch.as_tensor(tok.encode(text), dtype=torch.long)
    n = ids.numel() // length
    return ids[: n * length].reshape(n, length), tok


def toy_source(name: Literal["mixture2d", "categorical"]) -> tuple[Any, DataSource]:
    """The exact toys as training data: (distribution, sampler)."""
    if name == "mixture2d":
        mix = GaussianMixture.ring()
        return mix, lambda n, g: mix.sample(n, g).float()
    joint = CategoricalJoint.random(4, 2, concentration=0.3, seed=0)
    return joint, lambda n, g: joint.sample(n, g)
