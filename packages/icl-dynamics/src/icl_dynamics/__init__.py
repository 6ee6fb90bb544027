"""Mesa-optimization in autoregressively trained one-layer linear transformers: training dynamics vs theory.

Reproduces Zheng et al., "On Mesa-Optimization in Autoregressively Trained Transformers: Emergence and
Capability" (NeurIPS 2024, arXiv 2405.16845): AR data x_{t+1} = W x_t (`data`), the linear causal
self-attention model with O(T) prefix predictions (`model`, `prefix`), its loss and analytic gradient
(`objective`), full-batch GD until converged (`train`), the closed-form predictions (`theory`), the
Appendix-B grid (`sweep`), figures (`plots`) and the benchmark (`bench`).
"""

from icl_dynamics.data import X1Dist, ar_sequences, generate_sequences, random_phases
from icl_dynamics.model import LinearSelfAttention, LSAConfig, predict
from icl_dynamics.objective import ARProblem, LossGrad, ar_loss, loss_and_grad
from icl_dynamics.prefix import PrefixGram, embed
from icl_dynamics.theory import (
    Moments,
    TheoryPrediction,
    diagonal_gd,
    empirical_moments,
    expected_loss,
    expected_mse_last,
    gradient_flow,
    moments,
    predict_theory,
    stable_lr,
)
from icl_dynamics.train import TrainConfig, TrainingDivergedError, TrainResult, evaluate_last, train

__version__ = "0.1.0"

__all__ = [
    "ARProblem",
    "LSAConfig",
    "LinearSelfAttention",
    "LossGrad",
    "Moments",
    "PrefixGram",
    "TheoryPrediction",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "X1Dist",
    "ar_loss",
    "ar_sequences",
    "diagonal_gd",
    "embed",
    "empirical_moments",
    "evaluate_last",
    "expected_loss",
    "expected_mse_last",
    "generate_sequences",
    "gradient_flow",
    "loss_and_grad",
    "moments",
    "predict",
    "predict_theory",
    "random_phases",
    "stable_lr",
    "train",
]
