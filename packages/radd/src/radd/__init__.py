"""Reparameterized absorbing discrete diffusion (RADD): time-independent masked model, DCE likelihoods, cached samplers.

``radd.RADD(radd.RADDConfig(...))`` is the network (ids in [0, V], V = mask, to float32 log p₀ over the V real tokens).

The generic parts (losses, `estimate_nll`, `sample`, `sample_ordered`, `expected_nfe`, exact enumeration) work for
any masked model: a callable mapping ids in [0, V] (V = mask) of shape (B, L) to (B, L, V) logits/log-probs.
"""

from radd import losses
from radd.exact import ExactToy, MaskCosts, dce_integral, estimator_expectation, exact_nll, mask_costs
from radd.likelihood import ESTIMATORS, estimate_nll, perplexity
from radd.losses import LOSSES, get_loss, k_dce_loss, lambda_dce_loss, t_dce_loss, t_dse_loss
from radd.model import RADD, RADDConfig
from radd.ordered import generation_order, sample_ordered
from radd.process import mask_exactly, mask_independently, uniform_draws
from radd.sampling import SampleOutput, expected_nfe, initial_tokens, reveal_rates, sample
from radd.schedules import GeometricSchedule, LogLinearSchedule, NoiseSchedule, get_schedule

__version__ = "0.1.0"

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
