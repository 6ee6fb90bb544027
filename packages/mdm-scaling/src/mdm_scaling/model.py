"""The LLaMA-style transformer of the paper (Sec. 3 / App. B.1): RMSNorm, SwiGLU, rotary position embeddings,
no biases. The same body is bidirectional for the masked diffusion model (`MaskedDiffusionLM`) and causal with a
key/value cache for the autoregressive baseline (`AutoregressiveLM`).

The MDM embeds ``vocab_size + 1`` ids (id ``vocab_size`` is the mask) and predicts only the ``vocab_size`` real
tokens, so it is a "masked model" in radd's sense: ``model(x)`` with ids in ``[0, V]`` gives ``(B, L, V)`` logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gen_common.pretrained import PretrainedMixin
from mdm_scaling.config import ModelConfig, non_embedding_params

__all__ = ["AutoregressiveLM", "KVCache", "MaskedDiffusionLM", "RMSNorm", "load_model"]


class RMSNorm(nn.Module):
    """x / rms(x) · w, computed in float32 and cast back (as the official fused kernel does)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


def rope_table(
    length: int, head_size: int, base: float, precision: str = "float32"
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of RoPE angles, (length, head_size/2), returned as float32.

    ``precision="float32"`` (default): angles in float64, so long positions stay exact (a deliberate difference).
    ``precision="bfloat16"``: the official ``build_rope_cache`` (float32 angles, cos/sin rounded to bf16), which
    converted SMDM checkpoints need to give the official logits (the two tables differ by up to ~4e-3, which moves
    the logits of a 1B model by ~5e-2).
    """
    if precision == "bfloat16":
        inv = 1.0 / (base ** (torch.arange(0, head_size, 2, dtype=torch.float32) / head_size))
        ang = torch.outer(torch.arange(length, dtype=torch.float32), inv)
        return ang.cos().bfloat16().float(), ang.sin().bfloat16().float()
    if precision != "float32":
        raise ValueError(f"RoPE precision must be 'float32' or 'bfloat16', got {precision!r}")
    inv = 1.0 / (base ** (torch.arange(0, head_size, 2, dtype=torch.float64) / head_size))
    ang = torch.outer(torch.arange(length, dtype=torch.float64), inv)
    return ang.cos().float(), ang.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate halves (GPT-NeoX layout, the official ``interleaved=False``); x is (B, H, T, hs), cos (T, hs/2)."""
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    out = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    return out.to(x.dtype)


@dataclass
class KVCache:
    """Pre-allocated keys/values of every layer, (n_layer, B, groups, max_len, head_size), and the filled length."""

    k: torch.Tensor
    v: torch.Tensor
    length: int = 0

    @property
    def max_length(self) -> int:
        return self.k.shape[3]


class Attention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        hs, h, g = config.head_size, config.n_head, config.groups
        # One packed projection: [queries (h·hs) | keys (g·hs) | values (g·hs)].
        self.qkv = nn.Linear(config.n_embd, (h + 2 * g) * hs, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        *,
        causal: bool,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        c = self.config
        hs, h, g = c.head_size, c.n_head, c.groups
        q, k, v = self.qkv(x).split((h * hs, g * hs, g * hs), dim=-1)
        q = apply_rope(q.view(B, T, h, hs).transpose(1, 2), cos, sin)
        k = apply_rope(k.view(B, T, g, hs).transpose(1, 2), cos, sin)
        v = v.view(B, T, g, hs).transpose(1, 2)
        mask = None
        is_causal = causal
        if cache is not None:
            ck, cv = cache
            ck[:, :, start : start + T] = k
            cv[:, :, start : start + T] = v
            k, v = ck[:, :, : start + T], cv[:, :, : start + T]
            if start > 0:
                is_causal = False
                if T > 1:  # a chunk after a prefix: query i (absolute start+i) sees keys j <= start+i
                    mask = torch.arange(start + T, device=x.device)[None, :] <= (
                        start + torch.arange(T, device=x.device)[:, None]
                    )
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=is_causal and T > 1, enable_gqa=g != h
        )
        return self.proj(y.transpose(1, 2).reshape(B, T, c.n_embd))


class SwiGLU(nn.Module):
    """down(silu(gate x) · up x) (official xformers SwiGLU: w1 = gate, w2 = up, w3 = down)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.gate = nn.Linear(config.n_embd, config.intermediate_size, bias=False)
        self.up = nn.Linear(config.n_embd, config.intermediate_size, bias=False)
        self.down = nn.Linear(config.intermediate_size, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.norm_1 = RMSNorm(config.n_embd, config.norm_eps)
        self.attn = Attention(config)
        self.norm_2 = RMSNorm(config.n_embd, config.norm_eps)
        self.mlp = SwiGLU(config)

    def forward(self, x, cos, sin, *, causal, cache=None, start=0):
        x = x + self.attn(self.norm_1(x), cos, sin, causal=causal, cache=cache, start=start)
        return x + self.mlp(self.norm_2(x))


class _Transformer(nn.Module):
    """Embedding → blocks → final norm → head. ``embed_rows`` is V (ARM) or V + 1 (MDM, the mask row)."""

    causal: bool = False

    def __init__(self, config: ModelConfig, embed_rows: int) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(embed_rows, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm_f = RMSNorm(config.n_embd, config.norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Not a buffer: `.to(bf16)` would round the angles; kept in float32 per device instead.
        self._rope: tuple[torch.Tensor, torch.Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-NeoX init as in the official code: N(0, 2/(5d)) everywhere, output projections N(0, 1/(√d·n_layer))."""
        d = self.config.n_embd
        std = math.sqrt(2.0 / 5.0 / d)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, std)
        for blk in self.blocks:
            for w in (blk.attn.proj.weight, blk.mlp.down.weight):
                nn.init.normal_(w, 0.0, 1.0 / math.sqrt(d) / self.config.n_layer)

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    def set_rope_cache(self, precision: str) -> _Transformer:
        """Switch the RoPE table precision (``"float32"`` or ``"bfloat16"``, see `rope_table`); returns ``self``."""
        self.config = self.config.replace(rope_cache=precision)
        self._rope = None
        return self

    def num_params(self, non_embedding: bool = True) -> int:
        """N of C = 6·N·D (non-embedding) or the total count."""
        if non_embedding:
            return non_embedding_params(self.config)
        return sum(p.numel() for p in self.parameters())

    def _check_ids(self, idx: torch.Tensor, hi: int) -> None:
        if idx.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"token ids must be an integer tensor, got {idx.dtype}")
        if idx.ndim != 2:
            raise ValueError(f"token ids must be (batch, length), got shape {tuple(idx.shape)}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) > hi):
            raise ValueError(
                f"token ids must lie in [0, {hi}] (vocab_size {self.config.vocab_size}"
                f"{' plus the mask id' if hi == self.config.vocab_size else ''}); got "
                f"[{int(idx.min())}, {int(idx.max())}]: is the tokenizer the one the model was built for?"
            )

    def _run(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        T = idx.shape[1]
        start = 0 if cache is None else cache.length
        if start + T > self.config.block_size:
            raise ValueError(
                f"sequence of {start + T} tokens exceeds block_size {self.config.block_size}; "
                "crop the input or build the model with a larger block_size"
            )
        if self._rope is None or self._rope[0].device != idx.device:
            c = self.config
            cos, sin = rope_table(c.block_size, c.head_size, c.rope_base, c.rope_cache)
            self._rope = (cos.to(idx.device), sin.to(idx.device))
        cos, sin = self._rope[0][start : start + T], self._rope[1][start : start + T]
        x = self.wte(idx)
        for i, blk in enumerate(self.blocks):
            layer_cache = None if cache is None else (cache.k[i], cache.v[i])
            x = blk(x, cos, sin, causal=self.causal, cache=layer_cache, start=start)
        if cache is not None:
            cache.length = start + T
        return self.lm_head(self.norm_f(x))


class MaskedDiffusionLM(PretrainedMixin, _Transformer):
    """Bidirectional transformer over ids in ``[0, V]`` (V = ``mask_id``) that predicts the V real tokens (Sec. 3)."""

    config_class = ModelConfig
    causal = False

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, config.vocab_size + 1)

    @property
    def mask_id(self) -> int:
        return self.config.vocab_size

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, L) ids → (B, L, V) logits; a masked model for radd's samplers and likelihood estimators."""
        self._check_ids(idx, self.config.vocab_size)
        return self._run(idx)


class AutoregressiveLM(PretrainedMixin, _Transformer):
    """The ARM baseline: the same transformer, causal, with a pre-allocated key/value cache for generation."""

    config_class = ModelConfig
    causal = True

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, config.vocab_size)

    def new_cache(
        self, batch_size: int, max_length: int | None = None, *, dtype: torch.dtype | None = None
    ) -> KVCache:
        c = self.config
        n = c.block_size if max_length is None else max_length
        if n > c.block_size:
            raise ValueError(f"cache length {n} exceeds block_size {c.block_size}")
        p = self.lm_head.weight
        shape = (c.n_layer, batch_size, c.groups, n, c.head_size)
        dt = dtype or p.dtype
        return KVCache(
            torch.zeros(shape, device=p.device, dtype=dt), torch.zeros(shape, device=p.device, dtype=dt)
        )

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """(B, T) ids → (B, T, V) next-token logits. With ``cache`` the ids continue the cached prefix."""
        self._check_ids(idx, self.config.vocab_size - 1)
        if cache is not None:
            if cache.k.shape[1] != idx.shape[0]:
                raise ValueError(f"cache batch {cache.k.shape[1]} != input batch {idx.shape[0]}")
            if cache.length + idx.shape[1] > cache.max_length:
                raise ValueError(
                    f"cache holds {cache.max_length} positions; {cache.length} used + {idx.shape[1]} new "
                    "do not fit: allocate a longer cache"
                )
        return self._run(idx, cache)


_CLASSES = {"MaskedDiffusionLM": MaskedDiffusionLM, "AutoregressiveLM": AutoregressiveLM}


def load_model(path, *, device="cpu", dtype=None) -> MaskedDiffusionLM | AutoregressiveLM:
    """Load a folder written by ``save_pretrained`` of either architecture (the class is read from config.json)."""
    import json

    from gen_common.checkpoint import CheckpointError, resolve_pretrained

    d = resolve_pretrained(path, allow_patterns=["*.json", "*.safetensors"])
    cfg = d / "config.json"
    if not cfg.is_file():
        raise CheckpointError(f"{d} has no config.json; is it a model folder written by save_pretrained?")
    cls_name = json.loads(cfg.read_text(encoding="utf-8")).get("_class")
    if cls_name not in _CLASSES:
        raise CheckpointError(
            f"{d} holds a {cls_name!r}, not an mdm-scaling model; for official SMDM weights use "
            "`mdm-scaling convert`"
        )
    return _CLASSES[cls_name].from_pretrained(d, device=device, dtype=dtype)
