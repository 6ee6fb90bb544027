"""The optional T5 branch of LongSD (official ``modules/adapters.py`` + ``tools.py``): T5 encodes the whole caption
(240 tokens, padded to 240, no attention mask), a LaVi-Bridge-style adapter maps it to the UNet's width, and the
result is concatenated after the 240 CLIP segment rows (a 480-row context).

`TextAdapter` keeps the release's parameter names (``norm1``, ``ff1.net.0.proj``, ``ff1.net.2``, ``norm2``,
``ff2...``), so ``TextAdapter.from_pretrained(folder)`` loads the released adapter folder (config + weights).
Use ``SegmentEncoder(..., branch=T5Branch(tokenizer, t5, adapter))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

__all__ = ["T5Branch", "TextAdapter"]


class _GatedProj(nn.Module):
    """x ↦ a · gelu(b) with [a, b] = Wx + c (GEGLU)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, 2 * dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(b)


class _FeedForward(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, mult: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        hidden = dim_in * mult
        self.net = nn.Sequential(_GatedProj(dim_in, hidden), nn.Dropout(dropout), nn.Linear(hidden, dim_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TextAdapter(ModelMixin, ConfigMixin):
    """LayerNorm → GEGLU feed-forward (in → int) → LayerNorm → GEGLU feed-forward (int → out)."""

    @register_to_config
    def __init__(self, in_dim: int, int_dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(in_dim)
        self.ff1 = _FeedForward(in_dim, int_dim)
        self.norm2 = nn.LayerNorm(int_dim)
        self.ff2 = _FeedForward(int_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff2(self.norm2(self.ff1(self.norm1(x))))


class T5Branch:
    """Callable ``prompts -> (B, max_length, out_dim)``: T5 over the whole prompt, then the adapter."""

    def __init__(
        self, tokenizer: Any, encoder: nn.Module, adapter: TextAdapter, max_length: int = 240
    ) -> None:
        self.tokenizer, self.encoder, self.adapter, self.max_length = tokenizer, encoder, adapter, max_length

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        ids = self.tokenizer(
            list(prompts),
            max_length=self.max_length,
            padding="max_length",
            truncation=True,
            return_tensors="pt",
        ).input_ids
        dev = next(self.encoder.parameters()).device
        hidden = self.encoder(ids.to(dev))[0]  # the release passes no attention mask
        adapter_dtype = next(self.adapter.parameters()).dtype
        return self.adapter(hidden.to(adapter_dtype))
