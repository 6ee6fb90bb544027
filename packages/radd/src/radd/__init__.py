"""Reparameterized absorbing discrete diffusion (RADD): time-independent masked model, DCE likelihoods, cached samplers.

``radd.RADD(radd.RADDConfig(...))`` is the network (ids in [0, V], V = mask, to float32 log p₀ over the V real tokens).

The generic parts (losses, `estimate_nll`, `sample`, `sample_ordered`, `expected_nfe`, exact enumeration) work for
any masked model: a callable mapping ids in [0, V] (V = mask) of shape (B, L) to (B, L, V) logits/log-probs.
"""

from __future__ import annotations

from gen_common.lazy import lazy_exports

__version__ = "0.1.0"

# Names are imported on first use (PEP 562): `radd --help` and `import radd.cli` do not import torch.
_LAZY = {
    "ESTIMATORS": "likelihood",
    "ExactToy": "exact",
    "GeometricSchedule": "schedules",
    "LOSSES": "losses",
    "LogLinearSchedule": "schedules",
    "MaskCosts": "exact",
    "NoiseSchedule": "schedules",
    "RADD": "model",
    "RADDConfig": "model",
    "SampleOutput": "sampling",
    "dce_integral": "exact",
    "estimate_nll": "likelihood",
    "estimator_expectation": "exact",
    "exact_nll": "exact",
    "expected_nfe": "sampling",
    "generation_order": "ordered",
    "get_loss": "losses",
    "get_schedule": "schedules",
    "initial_tokens": "sampling",
    "k_dce_loss": "losses",
    "lambda_dce_loss": "losses",
    "losses": "losses",
    "mask_costs": "exact",
    "mask_exactly": "process",
    "mask_independently": "process",
    "perplexity": "likelihood",
    "reveal_rates": "sampling",
    "sample": "sampling",
    "sample_ordered": "ordered",
    "t_dce_loss": "losses",
    "t_dse_loss": "losses",
    "uniform_draws": "process",
}

__all__ = [
    "ESTIMATORS",
    "LOSSES",
    "RADD",
    "ExactToy",
    "GeometricSchedule",
    "LogLinearSchedule",
    "MaskCosts",
    "NoiseSchedule",
    "RADDConfig",
    "SampleOutput",
    "dce_integral",
    "estimate_nll",
    "estimator_expectation",
    "exact_nll",
    "expected_nfe",
    "generation_order",
    "get_loss",
    "get_schedule",
    "initial_tokens",
    "k_dce_loss",
    "lambda_dce_loss",
    "losses",
    "mask_costs",
    "mask_exactly",
    "mask_independently",
    "perplexity",
    "reveal_rates",
    "sample",
    "sample_ordered",
    "t_dce_loss",
    "t_dse_loss",
    "uniform_draws",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
