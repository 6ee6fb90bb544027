"""The text network of the nnaisense text8 BFN checkpoint (``text8_ema.pt``), re-implemented so that the official
state dict loads key for key (after dropping its ``net.`` prefix).

A bidirectional GPT-2-style transformer (Graves et al., 2023, Sec. 7.3): the input distribution θ (B, L, K) is
embedded linearly as ``2θ − 1``, plus fixed sinusoidal positions and a linear embedding of ``2t − 1``; pre-norm
blocks with tanh-GELU MLPs; with ``skip`` the final features are concatenated with the input embedding before
the output head that gives class logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GPT", "TextInputAdapter", "sinusoidal_positions"]


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """Fixed position codes as in the official ``pe_encode``: sin at even channels with wavelength base 1000 and
    exponent 2i/dim, cos at odd channels with exponent (2i + 1)/dim."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos / 1000.0 ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    pe[:, 1::2] = torch.cos(pos / 1000.0 ** (torch.arange(1, dim, 2, dtype=torch.float32) / dim))
    return pe


class TextInputAdapter(nn.Module):
    def __init__(
        self, vocab_size: int, seq_len: int, output_size: int, learn_pos_embedding: bool = False
    ) -> None:
        super().__init__()
        self.learn_pos_embedding = learn_pos_embedding
        if learn_pos_embedding:
            self.pos_embedding = nn.Embedding(seq_len, output_size)
        else:
            self.register_buffer("pos_embedding", sinusoidal_positions(seq_len, output_size))
        self.inp_embedding = nn.Linear(vocab_size, output_size)
        self.t_embedding = nn.Linear(1, output_size)

    def forward(self, probs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b, l, _ = probs.shape
        pos = self.pos_embedding.weight if self.learn_pos_embedding else self.pos_embedding
        if pos.shape[0] < l:
            raise ValueError(f"sequence length {l} exceeds the model's {pos.shape[0]} positions")
        t = t.reshape(b, -1)
        t = t.expand(b, l) if t.shape[1] == 1 else t  # (B,) or the official (B, L)
        return (
            self.inp_embedding(2 * probs - 1)
            + pos[:l].unsqueeze(0)
            + self.t_embedding((2 * t - 1).unsqueeze(-1))
        )


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (keys ``weight``/``bias`` as the official one)."""

    def __init__(self, dim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class SelfAttention(nn.Module):
    def __init__(self, n_head: int, n_embd: int, dropout: float, bias: bool) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} is not divisible by n_head={n_head}")
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)
        self.n_head = n_head
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, l, c = x.shape
        q, k, v = (
            u.reshape(b, l, self.n_head, c // self.n_head).transpose(1, 2) for u in self.c_attn(x).split(c, 2)
        )
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(b, l, c)))


class MLP(nn.Module):
    def __init__(self, n_embd: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, n_head: int, n_embd: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(n_embd, bias)
        self.attn = SelfAttention(n_head, n_embd, dropout, bias)
        self.ln_2 = LayerNorm(n_embd, bias)
        self.mlp = MLP(n_embd, dropout, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """``forward(theta (B, L, K), t (B,) or (B, L)) -> logits (B, L, vocab)``."""

    def __init__(
        self,
        input_adapter: nn.Module,
        vocab_size: int,
        n_layer: int = 24,
        n_head: int = 12,
        n_embd: int = 768,
        dropout: float = 0.0,
        bias: bool = True,
        skip: bool = True,
    ) -> None:
        super().__init__()
        self.input_adapter = input_adapter
        self.skip = skip
        self.transformer = nn.ModuleDict(
            {
                "drop": nn.Dropout(dropout),
                "h": nn.ModuleList(Block(n_head, n_embd, dropout, bias) for _ in range(n_layer)),
                "ln_f": LayerNorm(n_embd, bias),
            }
        )
        self.lm_head = nn.Linear((2 if skip else 1) * n_embd, vocab_size, bias=bias)
        # GPT-2 initialisation (normal 0.02, residual projections scaled by 1/sqrt(2 n_layer)), as nanoGPT.
        for name, p in self.named_parameters():
            if name.endswith("weight") and p.ndim == 2:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias") and "ln_" not in name:
                nn.init.zeros_(p)

    def forward(self, data: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x_in = self.input_adapter(data, t)
        x = self.transformer["drop"](x_in)
        for blk in self.transformer["h"]:
            x = blk(x)
        x = self.transformer["ln_f"](x)
        if self.skip:
            x = torch.cat([x, x_in], dim=-1)
        return self.lm_head(x)
