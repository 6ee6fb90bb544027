"""Benchmark: the paper's training run (d = 5, T = 100, m = 10 000, 200 epochs of full-batch GD) with the O(T)
cached-prefix-Gram path against direct O(T²) implementations, in one process.

Baselines (each epoch = loss + gradient + GD step on all m sequences):
- ``direct+autograd``: the causal (T × T) score form with autograd on the complex loss — what a direct port of
  the official model (which loops over prefixes) vectorises to;
- ``direct+analytic``: the same O(T²) operator with our analytic gradient (isolates the O(T) vs O(T²) gain).
The baselines are timed for ``baseline_epochs`` epochs, alternating with the candidate
(`gen_common.bench.compare`), and their per-epoch medians are extrapolated to ``epochs``; the candidate is also
timed end to end for the full ``epochs`` (including building the prefix Grams).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from gen_common.bench import compare
from gen_common.device import device_summary, synchronize
from gen_common.seeding import make_generator
from icl_dynamics.data import X1Dist, generate_sequences
from icl_dynamics.model import LinearSelfAttention, LSAConfig
from icl_dynamics.objective import ARProblem, ar_loss, loss_and_grad

__all__ = ["run_benchmark"]


@contextlib.contextmanager
def _threads(n: int | None, device: torch.device) -> Iterator[None]:
    if n is None or device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _gd_epoch_fn(model: LinearSelfAttention, problem: ARProblem, lr: float) -> Callable[[], float]:
    def step() -> float:
        lg = loss_and_grad(model.wpv, model.wkq, problem)
        with torch.no_grad():
            model.wkq.sub_(lr * lg.grad_wkq)
            model.wpv.sub_(lr * lg.grad_wpv)
        return lg.loss

    return step


def _autograd_epoch_fn(
    model: LinearSelfAttention, x: torch.Tensor, lr: float, chunk: int
) -> Callable[[], float]:
    m = x.shape[0]

    def step() -> float:
        total = 0.0
        for i in range(0, m, chunk):  # gradient accumulation over batch slices bounds the T² activations
            loss = ar_loss(model.wpv, model.wkq, x[i : i + chunk], strategy="direct") * (
                min(chunk, m - i) / m
            )
            loss.backward()
            total += loss.item()
        with torch.no_grad():
            for p in (model.wkq, model.wpv):
                p.sub_(lr * p.grad)
                p.grad = None
        return total

    return step


def run_benchmark(
    *,
    d: int = 5,
    T: int = 100,
    m: int = 10_000,
    epochs: int = 200,
    baseline_epochs: int = 10,
    lr: float = 1e-4,
    a0: float = 0.5,
    b0: float = 1.5,
    dtype: str = "complex64",
    device: torch.device | str = "cpu",
    threads: int | None = 2,
    seed: int = 1,
) -> dict[str, Any]:
    """Time the paper's training setting; returns times, ratios and a printable ``report``."""
    dev = torch.device(device)
    if epochs < 1 or baseline_epochs < 1:
        raise ValueError("epochs and baseline_epochs must be >= 1")
    x = generate_sequences(
        m, T, d, X1Dist.gaussian(1.0), generator=make_generator(seed), dtype=dtype, device=dev
    )
    models = {
        k: LinearSelfAttention(LSAConfig(d, a0, b0, dtype)).to(dev) for k in ("ours", "direct", "autograd")
    }
    with _threads(threads, dev):
        # End to end: prefix Grams built once, then `epochs` GD steps (the number to compare with "a minute").
        synchronize(dev)
        t0 = time.perf_counter()
        problem = ARProblem(x, "cumsum")
        build_s = time.perf_counter() - t0
        ours = _gd_epoch_fn(models["ours"], problem, lr)
        for _ in range(epochs):
            ours()
        synchronize(dev)
        total_s = time.perf_counter() - t0
        ab_ours = models["ours"].ab

        # Per-epoch medians, alternating candidate and baselines on fresh models.
        fresh = LinearSelfAttention(LSAConfig(d, a0, b0, dtype)).to(dev)
        cand = _gd_epoch_fn(fresh, problem, lr)
        direct_problem = ARProblem(x, "direct")
        direct = compare(
            _gd_epoch_fn(models["direct"], direct_problem, lr),
            cand,
            repeats=baseline_epochs,
            warmup=1,
            device=dev,
        )
        autograd = compare(
            _autograd_epoch_fn(models["autograd"], x, lr, chunk=1000),
            cand,
            repeats=baseline_epochs,
            warmup=1,
            device=dev,
        )
    # Same start, same rate, same number of steps: the O(T²) paths must land on the same parameters.
    steps = baseline_epochs + 1
    ref = LinearSelfAttention(LSAConfig(d, a0, b0, dtype)).to(dev)
    ref_step = _gd_epoch_fn(ref, problem, lr)
    for _ in range(steps):
        ref_step()
    with torch.no_grad():
        parity = max(
            float((models[k].wkq - ref.wkq).abs().max()) + float((models[k].wpv - ref.wpv).abs().max())
            for k in ("direct", "autograd")
        )
    per_epoch = {
        "ours": direct.candidate_s,
        "direct+analytic": direct.baseline_s,
        "direct+autograd": autograd.baseline_s,
    }
    result: dict[str, Any] = {
        "setting": {"d": d, "T": T, "m": m, "epochs": epochs, "lr": lr, "a0": a0, "b0": b0, "dtype": dtype},
        "device": device_summary(dev),
        "threads": threads if dev.type == "cpu" else None,
        "ours_total_s": total_s,
        "ours_prefix_gram_build_s": build_s,
        "ours_ab_after": ab_ours,
        "per_epoch_s": per_epoch,
        "extrapolated_total_s": {k: v * epochs for k, v in per_epoch.items() if k != "ours"},
        "speedup_vs_direct_analytic": direct.ratio,
        "speedup_vs_direct_autograd": autograd.ratio,
        "baseline_epochs_timed": baseline_epochs,
        "max_param_diff_vs_baselines": parity,
    }
    lines = [
        f"setting: d={d} T={T} m={m}, {epochs} epochs of full-batch GD (lr {lr:g}), {dtype}, {dev}"
        + (f" with {threads} threads" if result["threads"] else "")
        + f", torch {torch.__version__}",
        f"  O(T) cached prefix Grams: {total_s:.1f} s total ({build_s:.2f} s building the Grams), "
        f"{per_epoch['ours'] * 1e3:.1f} ms/epoch",
        f"  direct O(T^2) + analytic grad: {per_epoch['direct+analytic'] * 1e3:.1f} ms/epoch "
        f"-> {per_epoch['direct+analytic'] * epochs:.1f} s for {epochs} epochs (extrapolated from {baseline_epochs})"
        f"  speed-up x{direct.ratio:.1f}",
        f"  direct O(T^2) + autograd:      {per_epoch['direct+autograd'] * 1e3:.1f} ms/epoch "
        f"-> {per_epoch['direct+autograd'] * epochs:.1f} s for {epochs} epochs (extrapolated from {baseline_epochs})"
        f"  speed-up x{autograd.ratio:.1f}",
        f"  parity after {steps} identical GD steps: max |ΔW| = {parity:.2e}",
    ]
    result["report"] = "\n".join(lines)
    return result
