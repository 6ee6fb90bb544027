"""iced-coke: Latent Concept Misalignment (Zhao et al., ECCV 2024) — mine concept pairs a text-to-image model
fails to combine, and fix them at sampling time with MoCE and the switch-step search.

Names are imported lazily (PEP 562) so that ``iced-coke --help`` does not import torch.
"""

from __future__ import annotations

from gen_common.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "ConceptPair": "pairs",
    "PairFileError": "pairs",
    "load_pairs": "pairs",
    "save_pairs": "pairs",
    "MoCEError": "moce",
    "Stage1Cache": "moce",
    "count_unet_calls": "moce",
    "handoff_fraction": "moce",
    "moce_sample": "moce",
    "resume_stage2": "moce",
    "stage1_latents": "moce",
    "supports_resume": "moce",
    "MomentumState": "search",
    "SearchError": "search",
    "SearchResult": "search",
    "search_bounds": "search",
    "search_switch_step": "search",
    "CLIPScore": "scoring",
    "OpenCLIPBackend": "scoring",
    "TransformersCLIPBackend": "scoring",
    "ReferenceScorer": "scoring",
    "PairScorer": "scoring",
    "MoCEProbe": "probing",
    "LLM": "llm",
    "LLMError": "llm",
    "OpenAICompatibleLLM": "llm",
    "ScriptedLLM": "llm",
    "TransformersLLM": "llm",
    "ScoreJudge": "mining",
    "mine_pairs": "mining",
    "engineered_prompt": "baselines",
    "attend_and_excite_pipeline": "baselines",
    "evaluate_methods": "evaluation",
    "contact_sheet": "evaluation",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
