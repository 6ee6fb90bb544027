"""Model configuration and the size presets of the paper (Nie et al., 2025, Table 5 / the official
``lit_gpt/config.py``: ``Diff_LLaMA_6M`` … ``Diff_LLaMA_2121M``), plus tiny CPU presets.

One config describes both architectures: the MDM and the ARM share every weight shape except the embedding, which
has one extra row (the mask token) in the MDM.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gen_common.config import arg, validate

__all__ = [
    "PAPER_PRESETS",
    "PRESETS",
    "ROPE_CACHE_DTYPES",
    "ModelConfig",
    "SweepConfig",
    "non_embedding_params",
    "preset",
    "preset_names",
]


ROPE_CACHE_DTYPES = ("float32", "bfloat16")


@dataclass(frozen=True)
class ModelConfig:
    """A LLaMA-style transformer: RMSNorm, SwiGLU, RoPE, no biases."""

    vocab_size: int = 32000  # real tokens; the MDM's mask id is vocab_size (one extra embedding row)
    n_layer: int = 6
    n_head: int = 4
    n_embd: int = 256
    intermediate_size: int = 1024  # SwiGLU hidden width (4·n_embd in every paper config)
    n_query_groups: int | None = None  # grouped-query attention; None = n_head (all paper configs are MHA)
    block_size: int = 2048  # longest sequence (RoPE table length)
    norm_eps: float = 1e-5
    rope_base: float = 10000.0
    # RoPE cos/sin table precision: "float32" (exact angles) or "bfloat16" (the official lit-gpt cache, rounded to
    # bf16; converted SMDM checkpoints need it to reproduce the official logits to round-off)
    rope_cache: str = "float32"
    name: str = ""  # preset name, informational only

    def __post_init__(self) -> None:
        for field in ("vocab_size", "n_layer", "n_head", "n_embd", "intermediate_size", "block_size"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be > 0, got {getattr(self, field)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.head_size % 2:
            raise ValueError(f"head size n_embd/n_head = {self.head_size} must be even for RoPE")
        if self.rope_cache not in ROPE_CACHE_DTYPES:
            raise ValueError(f"rope_cache must be one of {ROPE_CACHE_DTYPES}, got {self.rope_cache!r}")
        if self.groups <= 0 or self.n_head % self.groups:
            raise ValueError(f"n_head ({self.n_head}) must be divisible by n_query_groups ({self.groups})")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @property
    def groups(self) -> int:
        return self.n_head if self.n_query_groups is None else self.n_query_groups

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)


def non_embedding_params(config: ModelConfig) -> int:
    """N of the scaling law: every parameter except the token embedding and the output head.

    Counts attention (qkv and output projections), SwiGLU (three matrices) and all RMSNorm weights, as the official
    ``model_para_config`` table does (e.g. 6,294,784 for the 6M preset).
    """
    d, h = config.n_embd, config.intermediate_size
    qkv = d * (config.n_head + 2 * config.groups) * config.head_size
    per_layer = qkv + d * d + 3 * d * h + 2 * d
    return config.n_layer * per_layer + d


# name: (n_layer, n_head, n_embd, intermediate_size). The paper's sizes (official Diff_LLaMA_* configs);
# all are multi-head attention with SwiGLU width 4·d except 75M.
_PAPER = {
    "6M": (6, 4, 256, 1024),
    "19M": (8, 6, 384, 1536),
    "34M": (8, 8, 512, 2048),
    "48M": (9, 9, 576, 2304),
    "66M": (10, 10, 640, 2560),
    "75M": (16, 8, 640, 1600),
    "85M": (13, 10, 640, 2560),
    "113M": (12, 12, 768, 3072),
    "142M": (15, 12, 768, 3072),
    "170M": (18, 12, 768, 3072),
    "180M": (14, 14, 896, 3584),
    "206M": (16, 14, 896, 3584),
    "231M": (18, 14, 896, 3584),
    "268M": (16, 16, 1024, 4096),
    "302M": (18, 16, 1024, 4096),
    "336M": (20, 16, 1024, 4096),
    "472M": (18, 10, 1280, 5120),
    "551M": (21, 10, 1280, 5120),
    "571M": (18, 11, 1408, 5632),
    "629M": (24, 10, 1280, 5120),
    "666M": (21, 11, 1408, 5632),
    "717M": (19, 12, 1536, 6144),
    "761M": (24, 11, 1408, 5632),
    "831M": (22, 12, 1536, 6144),
    "944M": (25, 12, 1536, 6144),
    "1028M": (20, 14, 1792, 7168),
    "1233M": (24, 14, 1792, 7168),
    "1476M": (22, 16, 2048, 8192),
    "1678M": (25, 16, 2048, 8192),
    "2121M": (28, 17, 2176, 8704),
}
# CPU-sized presets for tests, demos and the miniature IsoFLOP sweep, named by their non-embedding N. The demo's
# sweep uses one family of them (2 layers, 2 heads, width 8/12/16/20/24: tiny-2k, -5k, -8k, -13k, -19k) so that its
# IsoFLOP curves are not bent by changes of depth or head count between neighbouring sizes.
_TINY = {
    "tiny-1k": (1, 2, 8, 32),
    "tiny-2k": (2, 2, 8, 32),
    "tiny-4k": (1, 2, 16, 64),
    "tiny-5k": (2, 2, 12, 48),
    "tiny-8k": (2, 2, 16, 64),
    "tiny-12k": (3, 2, 16, 64),
    "tiny-13k": (2, 2, 20, 80),
    "tiny-19k": (2, 2, 24, 96),
    "tiny-28k": (3, 2, 24, 96),
    "tiny-33k": (2, 4, 32, 128),
    "tiny-49k": (3, 4, 32, 128),
    "tiny-66k": (4, 4, 32, 128),
    "tiny-103k": (4, 4, 40, 160),
    "tiny-148k": (4, 4, 48, 192),
}
# "1.1B" is the paper's name for its largest released MDM (the 1028M config: 1.03B non-embedding parameters).
_ALIASES = {"1.1B": "1028M", "1.1b": "1028M"}

PAPER_PRESETS: dict[str, tuple[int, int, int, int]] = dict(_PAPER)
PRESETS: dict[str, tuple[int, int, int, int]] = {**_PAPER, **_TINY}


def preset_names() -> list[str]:
    return list(PRESETS)


def preset(name: str, *, vocab_size: int = 32000, block_size: int = 2048, **overrides) -> ModelConfig:
    """The config of a named size (``"170M"``, ``"Diff_LLaMA_170M"``, ``"1.1B"``, ``"tiny-12k"`` …).

    Paper presets default to the TinyLlama vocabulary (32000) and context 2048 of the official runs.
    """
    key = name.removeprefix("Diff_LLaMA_")
    key = _ALIASES.get(key, key)
    if key not in PRESETS:
        close = [n for n in PRESETS if n.lower().startswith(key.lower()[:2])][:6]
        hint = f" (close: {', '.join(close)})" if close else ""
        raise ValueError(f"unknown preset {name!r}{hint}; available: {', '.join(PRESETS)}")
    n_layer, n_head, n_embd, inter = PRESETS[key]
    cfg = ModelConfig(
        vocab_size=vocab_size,
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        intermediate_size=inter,
        block_size=block_size,
        name=key,
    )
    return cfg.replace(**overrides) if overrides else cfg


@dataclass(frozen=True)
class SweepConfig:
    """The IsoFLOP grid: budgets x sizes x archs, and the settings every run of it shares."""

    budgets: tuple[float, ...] = arg((3e9, 1e10, 3e10), help="FLOP budgets C", gt=0)
    sizes: tuple[str, ...] = arg(("tiny-4k", "tiny-12k", "tiny-33k", "tiny-103k"), help="size presets")
    archs: tuple[str, ...] = arg(("mdm", "arm"), help="architectures")
    batch_size: int = arg(16, help="sequences per step", min=1)
    length: int = arg(32, help="training sequence length L", min=1)
    lr: float = arg(5e-3, help="peak learning rate", gt=0)
    ssl_prob: float = arg(0.0, help="stochastic sequence length probability (the paper: 0.01)", min=0, max=1)
    eval_windows: int = arg(64, help="validation windows per run", min=1)
    eval_samples: int = arg(16, help="Monte Carlo draws of the MDM bound per window (the paper: 128)", min=1)
    min_steps: int = arg(20, help="skip (budget, size) pairs buying fewer steps", min=1)
    max_steps: int = arg(20000, help="skip (budget, size) pairs buying more steps", min=1)
    seed: int = arg(0, help="seed of the sweep", cli=False)

    def __post_init__(self) -> None:
        bad = [a for a in self.archs if a not in ("mdm", "arm")]
        if bad:
            raise ValueError(f"unknown arch(s) {bad}: use arm, mdm")
        if not self.budgets or not self.sizes:
            raise ValueError("a sweep needs at least one budget and one size")
        validate(self)
