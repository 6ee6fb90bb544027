"""Benchmarks with an in-run baseline (gen_common.bench.compare): the ARM's KV cache against full recomputation,
radd's sampler cache on this package's MDM, and the cost of batched unsupervised CFG."""

from __future__ import annotations

from typing import Any

import torch

from gen_common.bench import compare
from gen_common.seeding import make_generator
from mdm_scaling.config import preset
from mdm_scaling.generation import arm_generate, mdm_generate
from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM

__all__ = ["run_benchmarks"]


def run_benchmarks(
    *,
    size: str = "tiny-49k",
    vocab_size: int = 103,
    batch: int = 8,
    prompt_len: int = 16,
    length: int = 64,
    steps: int = 128,
    repeats: int = 3,
    device: torch.device | str = "cpu",
) -> list[dict[str, Any]]:
    """Rows ``name, baseline, candidate, baseline_s, candidate_s, ratio`` (ratio = baseline/candidate time)."""
    dev = torch.device(device)
    cfg = preset(size, vocab_size=vocab_size, block_size=length)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        arm = AutoregressiveLM(cfg).to(dev).eval()
        mdm = MaskedDiffusionLM(cfg).to(dev).eval()
    prompts = torch.randint(0, vocab_size, (batch, prompt_len), generator=make_generator(0)).to(dev)
    new = length - prompt_len
    rows = []

    def add(name: str, base: str, cand: str, res) -> None:
        rows.append(
            {
                "name": name,
                "baseline": base,
                "candidate": cand,
                "baseline_s": res.baseline_s,
                "candidate_s": res.candidate_s,
                "ratio": res.ratio,
            }
        )

    res = compare(
        lambda: arm_generate(arm, prompts, new, cache=False, generator=make_generator(1)),
        lambda: arm_generate(arm, prompts, new, cache=True, generator=make_generator(1)),
        repeats=repeats,
        device=dev,
    )
    add(f"ARM generation, {new} tokens x {batch}", "no cache", "KV cache", res)
    res = compare(
        lambda: mdm_generate(
            mdm, prompts, length, steps, cache=False, remasking="random", generator=make_generator(2)
        ),
        lambda: mdm_generate(
            mdm, prompts, length, steps, cache=True, remasking="random", generator=make_generator(2)
        ),
        repeats=repeats,
        device=dev,
    )
    add(f"MDM sampling, {steps} steps (radd cache)", "no cache", "cache", res)
    res = compare(
        lambda: mdm_generate(mdm, prompts, length, steps, cfg=0.0, generator=make_generator(3)),
        lambda: mdm_generate(mdm, prompts, length, steps, cfg=1.0, generator=make_generator(3)),
        repeats=repeats,
        device=dev,
    )
    add(f"MDM sampling, {steps} steps", "no CFG", "unsupervised CFG (w=1)", res)
    return rows
