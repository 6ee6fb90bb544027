"""iced-coke: Latent Concept Misalignment (Zhao et al., ECCV 2024) — mine concept pairs a text-to-image model
fails to combine, and fix them at sampling time with MoCE and the switch-step search."""

from iced_coke.moce import (
    MoCEError,
    Stage1Cache,
    count_unet_calls,
    handoff_fraction,
    moce_sample,
    resume_stage2,
    stage1_latents,
    supports_resume,
)
from iced_coke.pairs import ConceptPair, PairFileError, load_pairs, save_pairs
from iced_coke.search import MomentumState, SearchError, SearchResult, search_bounds, search_switch_step

__all__ = [
    "ConceptPair",
    "MoCEError",
    "MomentumState",
    "PairFileError",
    "SearchError",
    "SearchResult",
    "Stage1Cache",
    "count_unet_calls",
    "handoff_fraction",
    "load_pairs",
    "moce_sample",
    "resume_stage2",
    "save_pairs",
    "search_bounds",
    "search_switch_step",
    "stage1_latents",
    "supports_resume",
]
