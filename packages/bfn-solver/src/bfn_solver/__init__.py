"""Bayesian flow networks as SDEs, and the fast BFN solvers for continuous and discrete data
(Xue et al., "Unifying Bayesian Flow Networks and Diffusion Models through Stochastic Differential Equations",
ICML 2024).

Model convention: BFN time t ∈ [0, 1], t = 1 at the data, passed as a tensor of shape (batch,).
Continuous: ``model(mu, t) -> ε̂``; discrete: ``model(theta, t) -> logits`` with theta = softmax(z).
"""

from bfn_solver.checkpoints import (
    BFNImageConfig,
    BFNImageModel,
    BFNTextConfig,
    BFNTextModel,
    convert_nnaisense_state_dict,
    decode_text8,
    encode_text8,
    load_nnaisense_checkpoint,
)
from bfn_solver.evaluation import fid, load_word_list, spelling_accuracy
from bfn_solver.losses import continuous_time_loss, discrete_time_loss
from bfn_solver.metrics import mmd_rbf, sliced_wasserstein, total_variation
from bfn_solver.sampling import (
    CONTINUOUS_METHODS,
    DISCRETE_METHODS,
    MethodInfo,
    SampleOutput,
    sample_continuous,
    sample_discrete,
)
from bfn_solver.scheduler import BFNSchedulerOutput, BFNSolverScheduler
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule, time_grid
from bfn_solver.toy_networks import ContinuousMLP, ContinuousMLPConfig, DiscreteMLP, DiscreteMLPConfig
from bfn_solver.toys import CategoricalJoint, ExactCategoricalModel, ExactMixtureModel, GaussianMixture
from bfn_solver.training import train_bfn
from bfn_solver.wrappers import BroadcastTime, DataPredictionModel, NoisePredictionModel

__version__ = "0.1.0"

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
