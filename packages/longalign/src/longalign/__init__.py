"""LongAlign: long prompts for text-to-image diffusion, and preference fine-tuning that does not overfit.

Implements Liu et al., "Improving Long-Text Alignment for Text-to-Image Diffusion Models" (ICLR 2025) on stock
diffusers Stable Diffusion pipelines: segment-level encoding (`SegmentEncoder`, `LongPromptPipeline`), the
decomposed preference score (`decompose_preference`, `preference_score`, `DecomposedPreference`) and LoRA reward
fine-tuning (`train_reward`, stage 2; `train_align`, stage 1). Names are imported on first use, so that
``import longalign`` (and ``longalign --help``) stays light.
"""

from __future__ import annotations

from gen_common.lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "SPLITTERS": "longalign.segments",
    "SegmentEncoder": "longalign.segments",
    "SegmentEncoding": "longalign.segments",
    "split_default": "longalign.segments",
    "split_official": "longalign.segments",
    "split_sentences": "longalign.segments",
    "LongPromptPipeline": "longalign.pipeline",
    "CLIP_MEAN": "longalign.preference",
    "CLIP_STD": "longalign.preference",
    "DecomposedPreference": "longalign.preference",
    "PreferenceOutput": "longalign.preference",
    "common_direction": "longalign.preference",
    "decompose_preference": "longalign.preference",
    "preference_score": "longalign.preference",
    "reward_crop": "longalign.preference",
    "LoraSpec": "longalign.lora",
    "add_lora": "longalign.lora",
    "save_lora": "longalign.lora",
    "load_lora": "longalign.lora",
    "merge_release_lora": "longalign.lora",
    "release_to_peft": "longalign.lora",
    "RewardConfig": "longalign.reward",
    "RewardObjective": "longalign.reward",
    "ddim_grid": "longalign.reward",
    "gradient_steps": "longalign.reward",
    "reward_rollout": "longalign.reward",
    "lcm_rollout": "longalign.reward",
    "train_reward": "longalign.training",
    "train_align": "longalign.training",
    "AlignObjective": "longalign.training",
    "merge_loras": "longalign.training",
    "load_pipeline": "longalign.loading",
    "T5Branch": "longalign.t5branch",
    "TextAdapter": "longalign.t5branch",
    "save_adapter": "longalign.t5branch",
    "load_t5_branch": "longalign.loading",
    "load_preference": "longalign.loading",
}

__all__ = ["__version__", *sorted(_LAZY)]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
