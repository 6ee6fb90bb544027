"""The cache benchmark: measured NFE against `expected_nfe`, and the wall-clock ratio uncached/cached, in one run
(`gen_common.bench.compare` alternates the two so that slow phases of a shared machine hit both)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gen_common.bench import compare, time_call
from gen_common.device import autocast
from radd.sampling import expected_nfe, sample

__all__ = ["BenchRow", "bench_cache"]


@dataclass
class BenchRow:
    steps: int
    length: int
    expected_nfe: float
    measured_nfe: float
    nfe_error: float  # measured / expected − 1
    nfe_ratio: float  # steps / measured NFE: the speed-up the cache can give at best
    uncached_s: float
    cached_s: float
    speedup: float  # uncached_s / cached_s
    efficiency: float  # speedup / nfe_ratio (goal ≥ 0.9)
    identical: bool  # cached and uncached tokens equal under one seed


@torch.no_grad()
def bench_cache(
    model: Any,
    *,
    length: int,
    steps: list[int],
    num_samples: int = 8,
    repeats: int = 3,
    nfe_samples: int = 256,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    mask_id: int | None = None,
) -> list[BenchRow]:
    """For each step count: NFE of the cached sampler over ``nfe_samples`` sequences (sampled in batches of
    ``num_samples``) vs the formula, and median wall-clock of cached vs uncached sampling of ``num_samples``
    (``repeats=1``: the one timed pair that also checks the tokens are identical)."""
    rows = []
    for n in steps:

        def run(cache: bool, s: int = seed, n: int = n) -> Any:
            with autocast(device, dtype):
                return sample(
                    model,
                    num_samples,
                    length,
                    n,
                    cache=cache,
                    generator=torch.Generator().manual_seed(s),
                    device=device,
                    mask_id=mask_id,
                )

        # the identity pair is timed too: with repeats=1 it is the timing (no second pair of runs)
        cached_1, cached_out = time_call(lambda: run(True), device)
        uncached_1, uncached_out = time_call(lambda: run(False), device)
        identical = bool(torch.equal(cached_out.tokens, uncached_out.tokens))
        nfes = [cached_out.nfe_per_sequence.double()]
        done, s = num_samples, seed + 1
        while done < nfe_samples:
            nfes.append(run(True, s).nfe_per_sequence.double())
            done, s = done + num_samples, s + 1
        measured = float(torch.cat(nfes).mean())
        if repeats > 1:
            res = compare(
                lambda n=n: run(False), lambda n=n: run(True), repeats=repeats, warmup=0, device=device
            )
            uncached_s, cached_s = res.baseline_s, res.candidate_s
        else:
            uncached_s, cached_s = uncached_1, cached_1
        speedup = uncached_s / cached_s
        exp = expected_nfe(n, length)
        ratio = n / measured
        rows.append(
            BenchRow(
                steps=n,
                length=length,
                expected_nfe=exp,
                measured_nfe=measured,
                nfe_error=measured / exp - 1.0,
                nfe_ratio=ratio,
                uncached_s=uncached_s,
                cached_s=cached_s,
                speedup=speedup,
                efficiency=speedup / ratio,
                identical=identical,
            )
        )
    return rows
