"""Masked diffusion language models at scale (Nie et al., "Scaling up Masked Diffusion Models on Text", ICLR 2025):
matched MDM/ARM training, IsoFLOP scaling laws, unsupervised CFG, zero-shot scoring, generation speed, reverse
curse and distribution shift. The absorbing process, losses, likelihood estimators and samplers come from radd.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Names are imported on first use (PEP 562): `mdm-scaling --help` and `import mdm_scaling.cli` do not import torch.
_LAZY = {
    "ARMOutput": "generation",
    "AutoregressiveLM": "model",
    "CausalLMScorer": "zeroshot",
    "Example": "zeroshot",
    "FactSet": "reverse",
    "KVCache": "model",
    "MaskedDiffusionLM": "model",
    "MaskedLMScorer": "zeroshot",
    "ModelConfig": "config",
    "PAPER_PRESETS": "config",
    "PRESETS": "config",
    "RunPlan": "compute",
    "ScalingFit": "scaling",
    "SweepConfig": "sweep",
    "Task": "zeroshot",
    "TokenData": "data",
    "UnsupervisedCFG": "guidance",
    "arm_generate": "generation",
    "arm_loss": "objectives",
    "cfg_combine": "guidance",
    "cloze_task": "zeroshot",
    "compute_gap": "scaling",
    "convert_smdm_state_dict": "convert",
    "eval_windows": "data",
    "evaluate_task": "zeroshot",
    "evaluate_tasks": "zeroshot",
    "fit_scaling_laws": "scaling",
    "infer_smdm_config": "convert",
    "load_jsonl_task": "zeroshot",
    "load_model": "model",
    "load_smdm_checkpoint": "convert",
    "make_batch_fn": "data",
    "make_facts": "reverse",
    "matched_quality_speedup": "speed",
    "quality_crossing": "speed",
    "mdm_generate": "generation",
    "mdm_loss": "objectives",
    "mdm_sft_loss": "objectives",
    "mean_sequence_length": "compute",
    "non_embedding_params": "config",
    "paper_config": "training",
    "plan_run": "compute",
    "plot_frontier": "scaling",
    "plot_isoflops": "scaling",
    "preset": "config",
    "read_runs": "scaling",
    "reverse_curse_eval": "reverse",
    "run_reverse_study": "reverse",
    "run_shift_study": "shift",
    "run_sweep": "sweep",
    "shift_table": "shift",
    "speed_table": "speed",
    "stdlib_docstrings": "shift",
    "to_smdm_state_dict": "convert",
    "train_lm": "training",
    "train_pair": "training",
    "training_flops": "compute",
    "validation_loss": "objectives",
    "write_runs": "scaling",
}

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
    "paper_config",
    "plan_run",
    "plot_frontier",
    "plot_isoflops",
    "preset",
    "quality_crossing",
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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mdm_scaling' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mdm_scaling.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
