"""The nnaisense BFN checkpoints as models of this package's convention, and their loader.

- `BFNImageModel` (CIFAR-10, ``cifar10_256c_ema.pt``: continuous data, σ₁² = 1e-6): ``model(mu, t) -> ε̂`` with
  ``mu`` channels-last (B, 32, 32, 3) in [−1, 1] and ``t`` of shape (B,).
- `BFNTextModel` (text8, ``text8_ema.pt``: K = 27, β₁ = 0.75²): ``model(theta, t) -> logits`` with ``theta``
  (B, 256, 27) and ``t`` of shape (B,). Ids: 0 = space (shown as "_"), 1..26 = "a".."z".

The official files hold the EMA state dict of nnaisense's ``BFN`` module, whose only weights are the network's,
under ``net.``. `load_nnaisense_checkpoint` reads them with ``torch.load(weights_only=True)`` (no pickled code),
drops the prefix and loads them strictly into the re-implemented network (`unet_vdm.UNetVDM`,
`transformer.GPT`). Both models also save/load in this package's own format (``save_pretrained``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
from bfn_solver.transformer import GPT, TextInputAdapter
from bfn_solver.unet_vdm import FourierImageInputAdapter, OutputAdapter, UNetVDM
from gen_common.checkpoint import CheckpointError, load_state_dict
from gen_common.pretrained import PretrainedMixin, load_into

__all__ = [
    "TEXT8_ALPHABET",
    "BFNImageConfig",
    "BFNImageModel",
    "BFNTextConfig",
    "BFNTextModel",
    "convert_nnaisense_state_dict",
    "decode_text8",
    "encode_text8",
    "load_nnaisense_checkpoint",
]

TEXT8_ALPHABET = "_abcdefghijklmnopqrstuvwxyz"  # id 0 is the space, printed as "_" like the official code


def encode_text8(text: str) -> torch.Tensor:
    """Ids of a text8 string (spaces or underscores for word breaks, lower-case a-z)."""
    table = {c: i for i, c in enumerate(TEXT8_ALPHABET)}
    table[" "] = 0
    bad = sorted({c for c in text if c not in table})
    if bad:
        raise ValueError(f"characters outside the text8 alphabet: {bad!r}")
    return torch.tensor([table[c] for c in text], dtype=torch.long)


def decode_text8(ids: torch.Tensor, space: str = " ") -> list[str]:
    """Strings of a (B, L) id tensor (or one string for (L,))."""
    rows = ids.reshape(-1, ids.shape[-1]).tolist()
    out = ["".join(space if i == 0 else TEXT8_ALPHABET[i] for i in row) for row in rows]
    return out


@dataclass(frozen=True)
class BFNImageConfig:
    """UNetVDM hyper-parameters; defaults are the official CIFAR-10 (256 bins, continuous) configuration."""

    embedding_dim: int = 128
    n_blocks: int = 32
    n_attention_heads: int = 1
    dropout_prob: float = 0.1
    norm_groups: int = 32
    image_channels: int = 3
    image_size: int = 32
    use_fourier_features: bool = True
    attention_everywhere: bool = False
    sigma_1: float = 0.001  # the schedule the network was trained with (min_variance = σ₁² = 1e-6)


class BFNImageModel(PretrainedMixin, nn.Module):
    """Noise-prediction image BFN: ``forward(mu (B, H, W, C), t (B,)) -> ε̂ (B, H, W, C)``."""

    config_class = BFNImageConfig

    def __init__(self, config: BFNImageConfig) -> None:
        super().__init__()
        self.config = config
        c, s = config.image_channels, config.image_size
        self.net = UNetVDM(
            FourierImageInputAdapter(c, (s, s), output_height=c, add_pos_feats=False, add_mask=False),
            OutputAdapter(c + config.embedding_dim, c, 1),
            embedding_dim=config.embedding_dim,
            n_blocks=config.n_blocks,
            n_attention_heads=config.n_attention_heads,
            dropout_prob=config.dropout_prob,
            norm_groups=config.norm_groups,
            input_channels=c,
            use_fourier_features=config.use_fourier_features,
            attention_everywhere=config.attention_everywhere,
            image_size=s,
        )

    @property
    def schedule(self) -> ContinuousSchedule:
        return ContinuousSchedule(self.config.sigma_1)

    def forward(self, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        c, s = self.config.image_channels, self.config.image_size
        if mu.ndim != 4 or mu.shape[1:] != (s, s, c):
            raise ValueError(
                f"expected mu of shape (B, {s}, {s}, {c}) (channels last), got {tuple(mu.shape)}"
            )
        return self.net(mu, t.reshape(mu.shape[0])).reshape(mu.shape)


@dataclass(frozen=True)
class BFNTextConfig:
    """GPT hyper-parameters; defaults are the official text8 configuration."""

    vocab_size: int = 27
    seq_len: int = 256
    n_layer: int = 24
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True
    skip: bool = True
    learn_pos_embedding: bool = False
    beta_1: float = 0.5625  # the schedule the network was trained with (max_sqrt_beta = 0.75)


class BFNTextModel(PretrainedMixin, nn.Module):
    """Discrete BFN over sequences: ``forward(theta (B, L, K), t (B,)) -> logits (B, L, K)``."""

    config_class = BFNTextConfig

    def __init__(self, config: BFNTextConfig) -> None:
        super().__init__()
        self.config = config
        self.net = GPT(
            TextInputAdapter(config.vocab_size, config.seq_len, config.n_embd, config.learn_pos_embedding),
            vocab_size=config.vocab_size,
            n_layer=config.n_layer,
            n_head=config.n_head,
            n_embd=config.n_embd,
            dropout=config.dropout,
            bias=config.bias,
            skip=config.skip,
        )

    @property
    def schedule(self) -> DiscreteSchedule:
        return DiscreteSchedule(self.config.vocab_size, self.config.beta_1)

    def forward(self, theta: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        k = self.config.vocab_size
        if theta.ndim != 3 or theta.shape[-1] != k:
            raise ValueError(f"expected theta of shape (B, L, {k}), got {tuple(theta.shape)}")
        return self.net(theta, t.reshape(theta.shape[0]))


def convert_nnaisense_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official ``net.*`` keys -> this package's ``net.*`` keys (the same names: the network is re-implemented
    with the official module paths). Keys outside ``net.`` (none in the released files) are dropped."""
    out = {k: v for k, v in state.items() if k.startswith("net.")}
    if not out:
        raise CheckpointError(
            "the checkpoint has no 'net.' keys; expected an nnaisense BFN state dict (e.g. cifar10_256c_ema.pt)"
        )
    return out


def load_nnaisense_checkpoint(
    path: str | os.PathLike[str],
    kind: Literal["cifar10", "text8"],
    *,
    config: BFNImageConfig | BFNTextConfig | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> BFNImageModel | BFNTextModel:
    """Load ``cifar10_256c_ema.pt`` (kind="cifar10") or ``text8_ema.pt`` (kind="text8") from a local path.

    ``config`` overrides the official hyper-parameters (e.g. a tiny model in tests). The file is read with
    ``torch.load(weights_only=True)``; a mismatch lists the missing/unexpected keys and shapes.
    """
    if kind == "cifar10":
        model: BFNImageModel | BFNTextModel = BFNImageModel(config or BFNImageConfig())
    elif kind == "text8":
        model = BFNTextModel(config or BFNTextConfig())
    else:
        raise ValueError(f"unknown checkpoint kind {kind!r}: use 'cifar10' or 'text8'")
    state = convert_nnaisense_state_dict(load_state_dict(path))
    load_into(model, state, strict=True, source=os.fspath(path))
    return model.to(device=device, dtype=dtype).eval()
