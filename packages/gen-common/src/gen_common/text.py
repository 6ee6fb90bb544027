"""Offline text for tests and demos: the stdlib's ``pydoc_data.topics`` prose, a character tokenizer, and
random training windows over a token stream."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from gen_common.atomic import atomic_write_json

__all__ = ["CharTokenizer", "bundled_corpus", "random_windows", "split_tokens"]


def bundled_corpus(max_chars: int | None = None) -> str:
    """About 465k characters of English prose that ships with CPython (the help topics of ``pydoc``).

    Deterministic (topics sorted by name), offline, the same on every machine with the same Python minor version.
    """
    from pydoc_data import topics

    text = "\n\n".join(topics.topics[k].strip() for k in sorted(topics.topics))
    return text if max_chars is None else text[:max_chars]


class CharTokenizer:
    """Maps each character of a fixed alphabet to an id in ``[0, vocab_size)``.

    Unknown characters are an error by default (a silently remapped character would bias a likelihood);
    ``errors="replace"`` maps them to ``replacement`` instead.
    """

    def __init__(self, alphabet: Sequence[str], replacement: str | None = None) -> None:
        chars = list(alphabet)
        if len(set(chars)) != len(chars):
            raise ValueError("alphabet has repeated characters")
        if any(len(c) != 1 for c in chars):
            raise ValueError("alphabet entries must be single characters")
        self.alphabet = chars
        self.index = {c: i for i, c in enumerate(chars)}
        if replacement is not None and replacement not in self.index:
            raise ValueError(f"replacement {replacement!r} is not in the alphabet")
        self.replacement = replacement

    @classmethod
    def from_text(cls, text: str, replacement: str | None = " ") -> CharTokenizer:
        alphabet = sorted(set(text))
        return cls(alphabet, replacement=replacement if replacement in alphabet else None)

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet)

    def encode(self, text: str, errors: str = "strict") -> torch.Tensor:
        ids = []
        bad = set()
        for ch in text:
            i = self.index.get(ch)
            if i is None:
                if errors == "replace" and self.replacement is not None:
                    i = self.index[self.replacement]
                else:
                    bad.add(ch)
                    continue
            ids.append(i)
        if bad:
            raise ValueError(
                f"{len(bad)} character(s) not in the tokenizer's alphabet: {''.join(sorted(bad))[:40]!r}; "
                "use errors='replace' or build the tokenizer from text that contains them"
            )
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int], mask_token: str = "_") -> str:
        """Ids outside the alphabet (a mask id, say) decode to ``mask_token``."""
        seq = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        n = len(self.alphabet)
        return "".join(self.alphabet[i] if 0 <= i < n else mask_token for i in seq)

    def save(self, path: str | os.PathLike[str]) -> Path:
        return atomic_write_json(
            path, {"type": "char", "alphabet": "".join(self.alphabet), "replacement": self.replacement}
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CharTokenizer:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"tokenizer file not found: {p}")
        data = json.loads(p.read_text(encoding="utf-8"))
        if data.get("type") != "char":
            raise ValueError(f"{p} is not a character tokenizer file")
        return cls(list(data["alphabet"]), replacement=data.get("replacement"))


def split_tokens(ids: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a 1-D token stream into a leading train part and a trailing validation part."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError("val_fraction must be in (0, 1)")
    cut = int(len(ids) * (1 - val_fraction))
    return ids[:cut], ids[cut:]


def random_windows(
    ids: torch.Tensor, batch_size: int, length: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``batch_size`` random contiguous windows of ``length`` tokens from a 1-D stream (one gather, no loop)."""
    if ids.ndim != 1:
        raise ValueError("ids must be a 1-D token stream")
    if len(ids) < length:
        raise ValueError(f"the token stream ({len(ids)} tokens) is shorter than the window length {length}")
    starts = torch.randint(0, len(ids) - length + 1, (batch_size,), generator=generator)
    return ids[starts[:, None] + torch.arange(length)]
