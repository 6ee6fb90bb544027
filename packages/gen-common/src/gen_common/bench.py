"""Benchmarks that print a ratio against a baseline measured in the same process, and an NFE counter.

Timed tests are flaky on shared machines; benchmark scripts alternate baseline and candidate so that slow
phases of the machine hit both, and report medians.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from gen_common.device import synchronize

__all__ = ["BenchResult", "NFECounter", "compare", "time_call"]


@dataclass(frozen=True)
class BenchResult:
    """Medians in seconds; ``ratio`` = baseline / candidate (> 1 means the candidate is faster)."""

    baseline_s: float
    candidate_s: float
    ratio: float
    baseline_times: tuple[float, ...] = field(repr=False)
    candidate_times: tuple[float, ...] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline_s": self.baseline_s,
            "candidate_s": self.candidate_s,
            "ratio": self.ratio,
            "repeats": len(self.baseline_times),
        }


def time_call(fn: Callable[[], Any], device: torch.device | str | None = None) -> tuple[float, Any]:
    """Wall-clock seconds of one call (synchronising the device before and after) and its return value."""
    if device is not None:
        synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    if device is not None:
        synchronize(device)
    return time.perf_counter() - t0, out


def compare(
    baseline: Callable[[], Any],
    candidate: Callable[[], Any],
    *,
    repeats: int = 5,
    warmup: int = 1,
    device: torch.device | str | None = None,
) -> BenchResult:
    """Run ``baseline`` and ``candidate`` alternately ``repeats`` times after ``warmup`` rounds."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    for _ in range(warmup):
        time_call(baseline, device)
        time_call(candidate, device)
    tb, tc = [], []
    for i in range(repeats):
        # Alternate which goes first so that neither always runs on a warmer cache.
        order = ((baseline, tb), (candidate, tc)) if i % 2 == 0 else ((candidate, tc), (baseline, tb))
        for fn, sink in order:
            sink.append(time_call(fn, device)[0])
    mb, mc = statistics.median(tb), statistics.median(tc)
    return BenchResult(mb, mc, mb / mc if mc > 0 else float("inf"), tuple(tb), tuple(tc))


class NFECounter(torch.nn.Module):
    """Wrap a model and count its evaluations: ``calls`` (forward calls) and ``rows`` (batch rows evaluated).

    Samplers that recompute only some rows (caching) report ``rows / batch`` as NFE per sequence.
    """

    def __init__(self, model: torch.nn.Module | Callable[..., Any]) -> None:
        super().__init__()
        self.model = model
        self.calls = 0
        self.rows = 0

    def reset(self) -> None:
        self.calls = 0
        self.rows = 0

    def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.rows += int(x.shape[0]) if isinstance(x, torch.Tensor) and x.ndim > 0 else 1
        return self.model(x, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.model, name)
