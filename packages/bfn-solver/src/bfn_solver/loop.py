"""The driver shared by every one-call-per-step sampler (continuous and discrete): evaluate the network at the
current grid time, then apply the method's update rule with the previous step's prediction (multistep methods).

A predictor provides ``pair(x, t) -> (prediction used by the update, value returned by final="prediction")`` and
``output(x, t)`` (the value returned by final="denoise"), and carries the ``schedule``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["single_eval_sampler"]


def single_eval_sampler(
    update: Callable[..., torch.Tensor], stochastic: bool, doc: str
) -> Callable[..., torch.Tensor]:
    """A sampler ``fn(predict, x, grid, noise, final, steps=None)`` from ``update(schedule, x_s, pred_s, s, t,
    previous (r, pred_r) or None, noise or None) -> x_t``."""

    def run(
        predict: Any,
        x: torch.Tensor,
        grid: list[float],
        noise: Callable[[int], torch.Tensor],
        final: str,
        steps: Iterable[int] | None = None,
    ) -> torch.Tensor:
        n = len(grid) - 1
        prev = None
        for i in steps if steps is not None else range(n):
            s, t = grid[i], grid[i + 1]
            pred, shown = predict.pair(x, s)
            if final == "prediction" and i == n - 1:
                return shown
            x = update(predict.schedule, x, pred, s, t, prev, noise(i) if stochastic else None)
            prev = (s, pred)
        return predict.output(x, grid[-1]) if final == "denoise" else x

    run.__doc__ = doc
    run.update = update  # type: ignore[attr-defined]
    return run
