"""Offline training data: a text (the bundled ``pydoc_data.topics`` prose by default) encoded once into a token
stream, split into train/validation, and random training windows."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from gen_common.text import bundled_corpus, random_windows, split_tokens

__all__ = ["TokenData", "load_text", "unigram_cross_entropy", "unigram_entropy"]


def load_text(path: str | os.PathLike[str] | None = None, max_chars: int | None = None) -> str:
    """The text of ``path`` (UTF-8), or the bundled corpus when ``path`` is None."""
    if path is None:
        return bundled_corpus(max_chars)
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"text file not found: {p}")
    text = p.read_text(encoding="utf-8")
    return text if max_chars is None else text[:max_chars]


def unigram_entropy(ids: torch.Tensor, vocab_size: int) -> float:
    """Entropy of the token frequencies in nats/token: the NLL of the best model that ignores context."""
    counts = torch.bincount(ids.flatten(), minlength=vocab_size).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


def unigram_cross_entropy(train_ids: torch.Tensor, eval_ids: torch.Tensor, vocab_size: int) -> float:
    """NLL (nats/token) of ``eval_ids`` under the add-one-smoothed token frequencies of ``train_ids``: the context-free
    baseline a sequence model has to beat."""
    counts = torch.bincount(train_ids.flatten(), minlength=vocab_size).double() + 1.0
    logp = (counts / counts.sum()).log()
    return float(-logp[eval_ids.flatten()].mean())


@dataclass
class TokenData:
    """Train/validation token streams and the window length."""

    train: torch.Tensor
    val: torch.Tensor
    length: int

    @classmethod
    def from_ids(cls, ids: torch.Tensor, length: int, val_fraction: float = 0.05) -> TokenData:
        train, val = split_tokens(ids, val_fraction)
        if len(val) < length or len(train) < length:
            raise ValueError(
                f"the text is too short for windows of {length} tokens; use a longer text or --length"
            )
        return cls(train, val, length)

    def batch_fn(self, batch_size: int):
        """``batch_fn(step, generator)`` for `gen_common.training.train`: random training windows."""

        def fn(step: int, generator: torch.Generator) -> torch.Tensor:
            return random_windows(self.train, batch_size, self.length, generator)

        return fn

    def val_windows(self, n: int | None = None) -> torch.Tensor:
        """``n`` non-overlapping validation windows spread evenly over the validation stream (all when None),
        so that a few windows see all of its kinds of text."""
        total = len(self.val) // self.length
        count = total if n is None else min(n, total)
        starts = (torch.arange(count) * total // count) * self.length
        return self.val[starts[:, None] + torch.arange(self.length)]

    def unigram_entropy(self, vocab_size: int) -> float:
        return unigram_entropy(self.train, vocab_size)

    def unigram_baseline(self, windows: torch.Tensor, vocab_size: int) -> float:
        """Cross-entropy of ``windows`` under the training unigram frequencies (nats/token)."""
        return unigram_cross_entropy(self.train, windows, vocab_size)
