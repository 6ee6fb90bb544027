"""IsoFLOP sweeps (Sec. 3.1): for every budget C and model size N, train for D = C / (6N) tokens and record the
validation loss; one CSV row per run (``arch,params,tokens,flops,loss`` plus ``budget,size,steps,seconds,...``).

The CSV is rewritten atomically after every run and runs already in it are skipped, so an interrupted sweep
resumes where it stopped. MDM and ARM runs of the same (budget, size) see identical batches and initial weights.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from gen_common.seeding import make_generator, split_seed
from mdm_scaling.compute import plan_run
from mdm_scaling.config import SweepConfig, non_embedding_params, preset
from mdm_scaling.data import TokenData, eval_windows, make_batch_fn
from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM
from mdm_scaling.objectives import validation_loss
from mdm_scaling.scaling import read_runs, write_runs
from mdm_scaling.training import paper_config, train_lm

__all__ = ["ARCHS", "SweepConfig", "build_model", "run_sweep"]

ARCHS = {"mdm": MaskedDiffusionLM, "arm": AutoregressiveLM}


def build_model(arch: str, size: str, vocab_size: int, block_size: int, seed: int) -> torch.nn.Module:
    """A model with initial weights that depend only on (size, seed): the MDM and ARM of a pair start alike."""
    cfg = preset(size, vocab_size=vocab_size, block_size=block_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ARCHS[arch](cfg)


def run_sweep(
    config: SweepConfig,
    data: TokenData,
    *,
    csv_path: str | os.PathLike[str] | None = None,
    device: torch.device | str = "cpu",
    progress: bool | None = None,
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every (arch, budget, size) that buys between ``min_steps`` and ``max_steps`` steps; returns the rows."""
    rows: list[dict[str, Any]] = []
    done: set[tuple[str, float, str]] = set()
    if csv_path is not None and Path(csv_path).is_file():
        rows = read_runs(csv_path)
        done = {(str(r["arch"]), float(r["budget"]), str(r["size"])) for r in rows}
    val = eval_windows(data.val, config.eval_windows, config.length)
    bsz = config.batch_size
    for b_i, budget in enumerate(config.budgets):
        for s_i, size in enumerate(config.sizes):
            cfg = preset(size, vocab_size=data.vocab_size, block_size=config.length + 1)
            n = non_embedding_params(cfg)
            plan = plan_run(budget, n, bsz, config.length, config.ssl_prob)
            if not config.min_steps <= plan.steps <= config.max_steps:
                continue
            for arch in config.archs:
                if (arch, float(budget), size) in done:
                    continue
                seed = split_seed(config.seed, s_i)
                model = build_model(arch, size, data.vocab_size, config.length + 1, seed)
                settings = paper_config(
                    plan.steps, config.lr, log_every=max(1, plan.steps), seed=split_seed(seed, b_i)
                )
                batch_fn = make_batch_fn(data.train, bsz, config.length, config.ssl_prob)
                t0 = time.perf_counter()
                result = train_lm(model, batch_fn, settings, device=device, progress=progress)
                secs = time.perf_counter() - t0
                model.eval()
                loss = validation_loss(
                    model,
                    val.to(next(model.parameters()).device),
                    num_samples=config.eval_samples,
                    generator=make_generator(split_seed(config.seed, 7, b_i, s_i)),
                )
                row = {
                    "arch": arch,
                    "params": n,
                    "tokens": plan.tokens,
                    "flops": plan.flops,
                    "loss": loss,
                    "budget": float(budget),
                    "size": size,
                    "steps": plan.steps,
                    "train_loss": result.final_loss,
                    "total_params": model.num_params(non_embedding=False),
                    "seconds": round(secs, 3),
                }
                rows.append(row)
                if csv_path is not None:
                    write_runs(rows, csv_path)
                if on_run is not None:
                    on_run(row)
    return rows


def budgets_for(
    sizes: Sequence[str], steps: Sequence[int], batch_size: int, length: int, vocab: int
) -> list[float]:
    """Budgets at which the middle size of ``sizes`` trains for each of ``steps`` (a helper to lay out a grid)."""
    mid = sizes[len(sizes) // 2]
    n = non_embedding_params(preset(mid, vocab_size=vocab))
    return [6.0 * n * s * batch_size * length for s in steps]
