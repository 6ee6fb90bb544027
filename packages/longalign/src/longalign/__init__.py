"""LongAlign: long prompts for text-to-image diffusion, and preference fine-tuning that does not overfit.

Implements Liu et al., "Improving Long-Text Alignment for Text-to-Image Diffusion Models" (ICLR 2025) on stock
diffusers Stable Diffusion pipelines: segment-level encoding (`SegmentEncoder`, `LongPromptPipeline`), the
decomposed preference score (`decompose_preference`, `preference_score`, `DecomposedPreference`) and reward
fine-tuning with LoRA (`train_reward`).
"""

from __future__ import annotations

from longalign.pipeline import LongPromptPipeline
from longalign.preference import (
    CLIP_MEAN,
    CLIP_STD,
    DecomposedPreference,
    PreferenceOutput,
    common_direction,
    decompose_preference,
    preference_score,
    reward_crop,
)
from longalign.segments import (
    SPLITTERS,
    SegmentEncoder,
    SegmentEncoding,
    split_default,
    split_official,
    split_sentences,
)

__version__ = "0.1.0"

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "SPLITTERS",
    "DecomposedPreference",
    "PreferenceOutput",
    "common_direction",
    "decompose_preference",
    "preference_score",
    "reward_crop",
    "LongPromptPipeline",
    "SegmentEncoder",
    "SegmentEncoding",
    "__version__",
    "split_default",
    "split_official",
    "split_sentences",
]
