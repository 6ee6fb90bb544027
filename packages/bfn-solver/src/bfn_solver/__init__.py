"""Bayesian flow networks as SDEs, and the fast BFN solvers for continuous and discrete data
(Xue et al., "Unifying Bayesian Flow Networks and Diffusion Models through Stochastic Differential Equations",
ICML 2024).

Model convention: BFN time t ∈ [0, 1], t = 1 at the data, passed as a tensor of shape (batch,).
Continuous: ``model(mu, t) -> ε̂``; discrete: ``model(theta, t) -> logits`` with theta = softmax(z).
"""

from __future__ import annotations

from gen_common.lazy import lazy_exports

__version__ = "0.1.0"

# Names are imported on first use (PEP 562): `bfn-solver --help` and `import bfn_solver.runs` do not import torch.
_LAZY = {
    "BFNImageConfig": "checkpoints",
    "BFNImageModel": "checkpoints",
    "BFNSchedulerOutput": "scheduler",
    "BFNSolverScheduler": "scheduler",
    "BFNTextConfig": "checkpoints",
    "BFNTextModel": "checkpoints",
    "BroadcastTime": "wrappers",
    "CONTINUOUS_METHODS": "sampling",
    "CategoricalJoint": "toy",
    "ContinuousMLP": "toy",
    "ContinuousMLPConfig": "toy",
    "ContinuousSchedule": "schedules",
    "DISCRETE_METHODS": "sampling",
    "DataPredictionModel": "wrappers",
    "DiscreteMLP": "toy",
    "DiscreteMLPConfig": "toy",
    "DiscreteSchedule": "schedules",
    "ExactCategoricalModel": "toy",
    "ExactMixtureModel": "toy",
    "GaussianMixture": "toy",
    "MethodInfo": "sampling",
    "NoisePredictionModel": "wrappers",
    "SampleOutput": "sampling",
    "continuous_time_loss": "losses",
    "convert_nnaisense_state_dict": "checkpoints",
    "decode_text8": "checkpoints",
    "discrete_time_loss": "losses",
    "encode_text8": "checkpoints",
    "fid": "evaluation",
    "load_nnaisense_checkpoint": "checkpoints",
    "load_word_list": "evaluation",
    "mmd_rbf": "metrics",
    "sample_continuous": "sampling",
    "sample_discrete": "sampling",
    "sliced_wasserstein": "metrics",
    "spelling_accuracy": "evaluation",
    "time_grid": "schedules",
    "total_variation": "metrics",
    "train_bfn": "training",
}

__all__ = [
    "CONTINUOUS_METHODS",
    "DISCRETE_METHODS",
    "BFNImageConfig",
    "BFNImageModel",
    "BFNSchedulerOutput",
    "BFNSolverScheduler",
    "BFNTextConfig",
    "BFNTextModel",
    "BroadcastTime",
    "CategoricalJoint",
    "ContinuousMLP",
    "ContinuousMLPConfig",
    "ContinuousSchedule",
    "DataPredictionModel",
    "DiscreteMLP",
    "DiscreteMLPConfig",
    "DiscreteSchedule",
    "ExactCategoricalModel",
    "ExactMixtureModel",
    "GaussianMixture",
    "MethodInfo",
    "NoisePredictionModel",
    "SampleOutput",
    "continuous_time_loss",
    "convert_nnaisense_state_dict",
    "decode_text8",
    "discrete_time_loss",
    "encode_text8",
    "fid",
    "load_nnaisense_checkpoint",
    "load_word_list",
    "mmd_rbf",
    "sample_continuous",
    "sample_discrete",
    "sliced_wasserstein",
    "spelling_accuracy",
    "time_grid",
    "total_variation",
    "train_bfn",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
