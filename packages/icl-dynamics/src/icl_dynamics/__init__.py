"""Mesa-optimization in autoregressively trained one-layer linear transformers: training dynamics vs theory.

Reproduces Zheng et al., "On Mesa-Optimization in Autoregressively Trained Transformers: Emergence and
Capability" (NeurIPS 2024, arXiv 2405.16845): AR data x_{t+1} = W x_t (`data`), the linear causal
self-attention model with O(T) prefix predictions (`model`, `prefix`), its loss and analytic gradient
(`objective`), full-batch GD until converged (`training`, `GDConfig`), the closed-form predictions (`theory`), the
Appendix-B grid (`sweep`), figures (`plotting`) and the benchmark (`bench`).
"""

from __future__ import annotations

from gen_common.lazy import lazy_exports

__version__ = "0.1.0"

# Names are imported on first use (PEP 562): `icl-dynamics --help` and `import icl_dynamics.cli` do not import
# torch.
_LAZY = {
    "ARProblem": "objective",
    "GDConfig": "config",
    "LSAConfig": "model",
    "LinearSelfAttention": "model",
    "LossGrad": "objective",
    "Moments": "theory",
    "PrefixGram": "prefix",
    "TheoryPrediction": "theory",
    "TrainResult": "training",
    "TrainingDivergedError": "training",
    "X1Dist": "data",
    "ar_loss": "objective",
    "ar_sequences": "data",
    "diagonal_gd": "theory",
    "embed": "prefix",
    "empirical_moments": "theory",
    "evaluate_last": "training",
    "expected_loss": "theory",
    "expected_mse_last": "theory",
    "generate_sequences": "data",
    "gradient_flow": "theory",
    "loss_and_grad": "objective",
    "moments": "theory",
    "predict": "model",
    "predict_theory": "theory",
    "random_phases": "data",
    "stable_lr": "theory",
    "train": "training",
}

__all__ = [
    "ARProblem",
    "GDConfig",
    "LSAConfig",
    "LinearSelfAttention",
    "LossGrad",
    "Moments",
    "PrefixGram",
    "TheoryPrediction",
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

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
