"""The optional T5 branch of LongSD (official ``modules/adapters.py`` + ``tools.py``): T5 encodes the whole caption
(240 tokens, padded to 240, no attention mask), a LaVi-Bridge-style adapter maps it to the UNet's width, and the
result is concatenated after the 240 CLIP segment rows (a 480-row context).

`TextAdapter` keeps the release's parameter names (``norm1``, ``ff1.net.0.proj``, ``ff1.net.2``, ``norm2``,
``ff2...``), so ``TextAdapter.from_pretrained(folder)`` loads the released adapter folder (config + weights), and
`save_adapter` writes the same layout (``config.json`` + ``diffusion_pytorch_model.safetensors``, what the
release's ``adapter.save_pretrained`` writes in stage 1). Use ``SegmentEncoder(..., branch=T5Branch(tokenizer, t5,
adapter))`` for sampling; stage 1 (`longalign.training.train_align`) trains the adapter through `T5Branch.encode`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

__all__ = ["LAVI_BRIDGE_WIDTH", "T5Branch", "TextAdapter", "save_adapter"]

# The inner width of LaVi-Bridge's T5-large -> SD adapter (TextAdapter(1024, 896, 768)), which the release starts from.
LAVI_BRIDGE_WIDTH = 896


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
    """Callable ``prompts -> (B, max_length, out_dim)``: T5 over the whole prompt, then the adapter (no gradients;
    `encode` is the same map with gradients through the adapter, for training)."""

    def __init__(
        self, tokenizer: Any, encoder: nn.Module, adapter: TextAdapter, max_length: int = 240
    ) -> None:
        self.tokenizer, self.encoder, self.adapter, self.max_length = tokenizer, encoder, adapter, max_length

    @torch.no_grad()
    def t5_states(self, prompts: Sequence[str]) -> torch.Tensor:
        """(B, max_length, d_model): the frozen T5 encoder's last hidden states, padded to ``max_length``."""
        ids = self.tokenizer(
            list(prompts),
            max_length=self.max_length,
            padding="max_length",
            truncation=True,
            return_tensors="pt",
        ).input_ids
        dev = next(self.encoder.parameters()).device
        return self.encoder(ids.to(dev))[0]  # the release passes no attention mask

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """The adapter rows, differentiable in the adapter's parameters (T5 stays frozen, as in stage 1)."""
        hidden = self.t5_states(prompts)
        adapter_param = next(self.adapter.parameters())
        return self.adapter(hidden.to(adapter_param.device, adapter_param.dtype))

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        return self.encode(prompts)


def save_adapter(adapter: TextAdapter, directory: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``adapter`` as the release does (``save_pretrained``: ``config.json`` +
    ``diffusion_pytorch_model.safetensors``, float32), each file replaced atomically; ``TextAdapter.from_pretrained``
    and ``longalign sample --adapter`` read it back."""
    target = Path(directory)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(f"{target} is not empty; choose another folder or pass overwrite=True")
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    dtype = next(adapter.parameters()).dtype
    try:
        adapter.float().save_pretrained(tmp, safe_serialization=True)
        for f in sorted(tmp.iterdir()):
            os.replace(f, target / f.name)  # one rename per file: a reader never sees half a file
    finally:
        adapter.to(dtype)  # the caller's adapter keeps its dtype, even when writing fails
        shutil.rmtree(tmp, ignore_errors=True)
    return target
