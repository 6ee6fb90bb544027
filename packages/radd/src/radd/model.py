"""RADD's network: a DiT-style transformer *without* time conditioning ("DDiT", RADD §3.1 and Appendix).

Theorem 1 says the concrete score of the absorbing process is a time-dependent scalar times the conditional
distribution of clean data, so the network only has to model p₀(xⁱ | unmasked tokens): no time embedding, no adaLN.
Each block: pre-LayerNorm, bidirectional multi-head attention with rotary position embeddings (SDPA: flash kernels
on CUDA), pre-LayerNorm GELU MLP, residual dropout. The head maps to the V real tokens only and returns float32
log-probabilities (the official model also emits a never-used mask column; the converter drops it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gen_common.checkpoint import resolve_pretrained
from gen_common.pretrained import PretrainedMixin
from radd.masked_model import check_tokens

__all__ = ["RADD", "RADDConfig", "Rotary"]


@dataclass(frozen=True)
class RADDConfig:
    """Defaults are the released RADD-small (GPT-2 vocabulary, 1024 tokens, 12×768, 12 heads, ~162M)."""

    vocab_size: int = 50257  # real tokens V; the mask id is V
    max_length: int = (
        1024  # longest input; RoPE itself has no limit, but checkpoints are trained at one length
    )
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_ratio: int = 4
    dropout: float = 0.02  # residual dropout after attention and MLP (official value)
    rope_base: float = 10000.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_length", "hidden_size", "num_layers", "num_heads", "mlp_ratio"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"RADDConfig.{name} must be >= 1")
        if self.hidden_size % self.num_heads:
            raise ValueError("hidden_size must be divisible by num_heads")
        if (self.hidden_size // self.num_heads) % 2:
            raise ValueError("the head dimension hidden_size/num_heads must be even (rotary embeddings)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    @property
    def mask_id(self) -> int:
        return self.vocab_size


class Rotary(nn.Module):
    """Rotary embeddings in the "rotate half" layout of the official code (cos/sin of cat(freqs, freqs))."""

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.arange(length, device=device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq.to(device))
        emb = torch.cat((freqs, freqs), dim=-1)  # (L, head_dim)
        return emb.cos(), emb.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, config: RADDConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, L, D = h.shape
        q, k, v = self.qkv(h).view(B, L, 3, self.num_heads, D // self.num_heads).unbind(dim=2)
        # (B, L, heads, d) -> rotate q and k (v is not rotated) -> (B, heads, L, d) for SDPA
        c, s = cos[:, None, :], sin[:, None, :]
        q, k = _rotate(q, c, s), _rotate(k, c, s)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(B, L, D))


class MLP(nn.Module):
    def __init__(self, config: RADDConfig) -> None:
        super().__init__()
        self.fc_in = nn.Linear(config.hidden_size, config.mlp_ratio * config.hidden_size)
        self.fc_out = nn.Linear(config.mlp_ratio * config.hidden_size, config.hidden_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc_out(F.gelu(self.fc_in(h), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, config: RADDConfig) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(config.hidden_size)
        self.attn = Attention(config)
        self.norm_mlp = nn.LayerNorm(config.hidden_size)
        self.mlp = MLP(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        h = h + self.dropout(self.attn(self.norm_attn(h), cos, sin))
        return h + self.dropout(self.mlp(self.norm_mlp(h)))


class RADD(PretrainedMixin, nn.Module):
    """``RADD(RADDConfig(...))(x)`` maps ids (B, L) in [0, V] (V = mask) to float32 log p₀ (B, L, V)."""

    config_class = RADDConfig

    def __init__(self, config: RADDConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else RADDConfig()
        c = self.config
        self.embed = nn.Embedding(c.vocab_size + 1, c.hidden_size)  # the last row embeds the mask
        self.rotary = Rotary(c.hidden_size // c.num_heads, c.rope_base)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.num_layers))
        self.norm_out = nn.LayerNorm(c.hidden_size)
        self.head = nn.Linear(c.hidden_size, c.vocab_size)
        # The official code zero-initialises the output layer (uniform predictions at step 0); so do we.
        # (Its LayerNorm biases start at one, an oddity we do not copy: zeros are the standard choice.)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def mask_id(self) -> int:
        return self.config.vocab_size

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        name_or_path: str | os.PathLike[str],
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> RADD:
        """Load a folder written by `save_pretrained`, or an official RADD checkpoint (converted on the fly, see
        `radd.convert`), from a local directory or a Hugging Face id (e.g. ``JingyangOu/radd-t-dce``; a clear
        `OfflineError` when downloads are off)."""
        from radd.convert import is_official_checkpoint, load_official

        d = resolve_pretrained(name_or_path, allow_patterns=["*.json", "*.safetensors", "*.bin"])
        if is_official_checkpoint(d):
            return load_official(d, device=device, dtype=dtype)
        return super().from_pretrained(d, device=device, dtype=dtype, **kwargs)

    def num_parameters(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.embed.weight.numel() if non_embedding else n

    supports_positions = True  # `radd.sampling.scores_at` asks for the head only where the sampler reads it

    def logits(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Unnormalised scores over the V real tokens (in the autocast dtype): (B, L, V), or (n, V) at the True
        entries of a bool (B, L) ``positions`` mask (row-major order; the head, a third of the FLOPs per position
        at GPT-2 size, runs only there)."""
        x = check_tokens(x, self.config.vocab_size, allow_mask=True)
        if x.shape[1] > self.config.max_length:
            raise ValueError(
                f"input length {x.shape[1]} exceeds this model's max_length {self.config.max_length}; "
                "use shorter sequences (the checkpoint was trained at that length)"
            )
        h = self.embed(x)
        cos, sin = self.rotary(x.shape[1], x.device)
        for block in self.blocks:
            h = block(h, cos, sin)
        if positions is not None:
            if positions.dtype != torch.bool or tuple(positions.shape) != tuple(x.shape):
                raise ValueError(f"positions must be a bool mask of shape {tuple(x.shape)}")
            h = h[positions]
        return self.head(self.norm_out(h))

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """float32 log p₀ (B, L, V), or (n, V) at the True entries of a bool (B, L) ``positions`` mask."""
        # log_softmax in float32 even under bf16/fp16 autocast: half-precision log-probs reach −∞ (a known
        # complaint about the official λ-DCE loss).
        return torch.log_softmax(self.logits(x, positions).float(), dim=-1)
