"""Masked diffusion language models at scale (Nie et al., "Scaling up Masked Diffusion Models on Text", ICLR 2025):
matched MDM/ARM training, IsoFLOP scaling laws, unsupervised CFG, zero-shot scoring, generation speed, reverse
curse and distribution shift. The absorbing process, losses, likelihood estimators and samplers come from radd.
"""

from mdm_scaling.compute import RunPlan, mean_sequence_length, plan_run, training_flops
from mdm_scaling.config import PAPER_PRESETS, PRESETS, ModelConfig, non_embedding_params, preset
from mdm_scaling.convert import (
    convert_smdm_state_dict,
    infer_smdm_config,
    load_smdm_checkpoint,
    to_smdm_state_dict,
)
from mdm_scaling.data import TokenData, eval_windows, make_batch_fn
from mdm_scaling.generation import ARMOutput, arm_generate, mdm_generate
from mdm_scaling.guidance import UnsupervisedCFG, cfg_combine
from mdm_scaling.model import AutoregressiveLM, KVCache, MaskedDiffusionLM, load_model
from mdm_scaling.objectives import arm_loss, mdm_loss, mdm_sft_loss, validation_loss
from mdm_scaling.reverse import FactSet, make_facts, reverse_curse_eval, run_reverse_study
from mdm_scaling.scaling import (
    ScalingFit,
    compute_gap,
    fit_scaling_laws,
    plot_frontier,
    plot_isoflops,
    read_runs,
    write_runs,
)
from mdm_scaling.shift import run_shift_study, shift_table, stdlib_docstrings
from mdm_scaling.speed import matched_quality_speedup, speed_table
from mdm_scaling.sweep import SweepConfig, run_sweep
from mdm_scaling.trainer import TrainSettings, train_lm, train_pair
from mdm_scaling.zeroshot import (
    CausalLMScorer,
    Example,
    MaskedLMScorer,
    Task,
    cloze_task,
    evaluate_task,
    evaluate_tasks,
    load_jsonl_task,
)

__version__ = "0.1.0"

__all__ = [
    "PAPER_PRESETS",
    "PRESETS",
    "ARMOutput",
    "AutoregressiveLM",
    "CausalLMScorer",
    "Example",
    "FactSet",
    "KVCache",
    "MaskedDiffusionLM",
    "MaskedLMScorer",
    "ModelConfig",
    "RunPlan",
    "ScalingFit",
    "SweepConfig",
    "Task",
    "TokenData",
    "TrainSettings",
    "UnsupervisedCFG",
    "arm_generate",
    "arm_loss",
    "cfg_combine",
    "cloze_task",
    "compute_gap",
    "convert_smdm_state_dict",
    "eval_windows",
    "evaluate_task",
    "evaluate_tasks",
    "fit_scaling_laws",
    "infer_smdm_config",
    "load_jsonl_task",
    "load_model",
    "load_smdm_checkpoint",
    "make_batch_fn",
    "make_facts",
    "matched_quality_speedup",
    "mdm_generate",
    "mdm_loss",
    "mdm_sft_loss",
    "mean_sequence_length",
    "non_embedding_params",
    "plan_run",
    "plot_frontier",
    "plot_isoflops",
    "preset",
    "read_runs",
    "reverse_curse_eval",
    "run_reverse_study",
    "run_shift_study",
    "run_sweep",
    "shift_table",
    "speed_table",
    "stdlib_docstrings",
    "to_smdm_state_dict",
    "train_lm",
    "train_pair",
    "training_flops",
    "validation_loss",
    "write_runs",
]
