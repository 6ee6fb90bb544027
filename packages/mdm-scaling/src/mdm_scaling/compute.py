"""Compute accounting of the scaling study (Sec. 3.1): C = 6·N·D with N the non-embedding parameters and D the
training tokens. MDM and ARM cost the same per token (one forward and backward of the same transformer)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RunPlan", "mean_sequence_length", "plan_run", "training_flops"]


def training_flops(n_params: int | float, tokens: int | float) -> float:
    """C = 6·N·D."""
    if n_params <= 0 or tokens < 0:
        raise ValueError("n_params must be > 0 and tokens >= 0")
    return 6.0 * float(n_params) * float(tokens)


def mean_sequence_length(length: int, ssl_prob: float = 0.0) -> float:
    """Expected tokens per sequence under stochastic sequence length: with probability ``ssl_prob`` a batch is
    cropped to a uniform length in 1..L (mean (L+1)/2), as the official ``train_mdm_rl.py`` budgets it."""
    if not 0.0 <= ssl_prob <= 1.0:
        raise ValueError("ssl_prob must be in [0, 1]")
    return length * (1 - ssl_prob) + 0.5 * (1 + length) * ssl_prob


@dataclass(frozen=True)
class RunPlan:
    """How many optimizer steps a FLOP budget buys for one model size."""

    budget: float
    n_params: int
    steps: int
    tokens: float
    flops: float


def plan_run(budget: float, n_params: int, batch_size: int, length: int, ssl_prob: float = 0.0) -> RunPlan:
    """steps = round(C / (6·N·B·E[L])); the realised tokens and FLOPs follow from the rounded step count."""
    if budget <= 0:
        raise ValueError("budget must be > 0")
    per_step = batch_size * mean_sequence_length(length, ssl_prob)
    steps = max(0, round(budget / (6.0 * n_params * per_step)))
    tokens = steps * per_step
    return RunPlan(budget, n_params, steps, tokens, training_flops(n_params, tokens))
