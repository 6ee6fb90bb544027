"""Token streams shared by both architectures: the same ``batch_fn`` (same seed → same windows) feeds the MDM and
the ARM, so a comparison differs only in the objective (Sec. 3: "same data, same architecture").

A batch is ``(B, L + 1)`` ids: the MDM trains on the first L, the ARM predicts tokens 2..L+1 from 1..L, so both
see L training tokens per sequence. Stochastic sequence length (App. B.1: with probability 1% a batch is cropped
to a uniform length in 1..L) is applied to the batch, identically for both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gen_common.text import CharTokenizer, bundled_corpus, split_tokens

__all__ = [
    "TokenData",
    "eval_windows",
    "load_sft_pairs",
    "load_token_file",
    "make_batch_fn",
    "make_sft_batch_fn",
]


@dataclass
class TokenData:
    """A training and a validation token stream over ``vocab_size`` real tokens."""

    train: torch.Tensor
    val: torch.Tensor
    vocab_size: int
    tokenizer: CharTokenizer | None = None

    @classmethod
    def from_text(
        cls, text: str, tokenizer: CharTokenizer | None = None, val_fraction: float = 0.05
    ) -> TokenData:
        tok = tokenizer or CharTokenizer.from_text(text)
        ids = tok.encode(text, errors="replace")
        tr, va = split_tokens(ids, val_fraction)
        return cls(tr, va, tok.vocab_size, tok)

    @classmethod
    def bundled(cls, max_chars: int | None = None, val_fraction: float = 0.05) -> TokenData:
        """The offline corpus (CPython's pydoc topics, ~465k characters) at character level."""
        return cls.from_text(bundled_corpus(max_chars), val_fraction=val_fraction)

    @classmethod
    def from_token_files(cls, train: str | os.PathLike[str], val: str | os.PathLike[str], vocab_size: int):
        """Pre-tokenised streams (``.npy`` or raw ``uint16`` ``.bin`` as nanoGPT/lit-gpt write them)."""
        tr, va = load_token_file(train), load_token_file(val)
        for name, t in (("train", tr), ("val", va)):
            if len(t) and int(t.max()) >= vocab_size:
                raise ValueError(f"{name} tokens reach id {int(t.max())} >= vocab_size {vocab_size}")
        return cls(tr, va, vocab_size)


def load_token_file(path: str | os.PathLike[str]) -> torch.Tensor:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"token file not found: {p}")
    if p.suffix == ".npy":
        arr = np.load(p, allow_pickle=False)
    elif p.suffix == ".bin":
        arr = np.fromfile(p, dtype=np.uint16)
    else:
        raise ValueError(f"unknown token file type {p.suffix!r}: use .npy or uint16 .bin")
    return torch.from_numpy(np.asarray(arr, dtype=np.int64).reshape(-1))


def make_batch_fn(
    ids: torch.Tensor, batch_size: int, length: int, ssl_prob: float = 0.0
) -> Callable[[int, torch.Generator], torch.Tensor]:
    """``batch_fn(step, generator) -> (B, L' + 1)`` random windows; L' = L, or uniform in 1..L with ``ssl_prob``."""
    if ids.ndim != 1 or len(ids) < length + 1:
        raise ValueError(f"need a 1-D stream of at least {length + 1} tokens, got shape {tuple(ids.shape)}")
    if not 0.0 <= ssl_prob <= 1.0:
        raise ValueError("ssl_prob must be in [0, 1]")

    def batch_fn(step: int, generator: torch.Generator) -> torch.Tensor:
        starts = torch.randint(0, len(ids) - length, (batch_size,), generator=generator)
        x = ids[starts[:, None] + torch.arange(length + 1)]
        if ssl_prob > 0 and float(torch.rand((), generator=generator)) < ssl_prob:
            cut = int(torch.randint(1, length + 1, (), generator=generator))
            x = x[:, : cut + 1]
        return x

    return batch_fn


def eval_windows(ids: torch.Tensor, count: int, length: int) -> torch.Tensor:
    """``count`` evenly spaced, fixed windows of ``length + 1`` tokens (a deterministic validation set)."""
    if len(ids) < length + 1:
        raise ValueError(f"validation stream has {len(ids)} tokens; need at least {length + 1}")
    starts = torch.linspace(0, len(ids) - length - 1, count).long()
    return ids[starts[:, None] + torch.arange(length + 1)]


def read_jsonl(path: str | os.PathLike[str], what: str = "file") -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; a missing file or a non-object line is a clear error."""
    import json

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: {p}")
    out = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}:{i}: not JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise ValueError(f"{p}:{i}: each line must be a JSON object")
        out.append((i, obj))
    if not out:
        raise ValueError(f"{p} holds no lines")
    return out


def load_sft_pairs(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """(prompt, response) pairs from JSONL lines ``{"prompt": ..., "response": ...}``."""
    pairs = []
    for i, obj in read_jsonl(path, "SFT file"):
        if not isinstance(obj.get("prompt"), str) or not isinstance(obj.get("response"), str):
            raise ValueError(f'{path}:{i}: each line needs string "prompt" and "response" fields')
        pairs.append((obj["prompt"], obj["response"]))
    return pairs


def make_sft_batch_fn(
    pairs: list[tuple[str, str]], tokenizer, batch_size: int, length: int, pad_id: int
) -> Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]:
    """``batch_fn -> (x (B, L + 1), prompt_mask (B, L + 1))``: prompt + response padded with ``pad_id`` (the
    official SFT data pads with EOS and trains on the padding as part of the response)."""
    rows = torch.full((len(pairs), length + 1), int(pad_id), dtype=torch.long)
    prompt = torch.zeros(len(pairs), length + 1, dtype=torch.bool)
    for i, (p, r) in enumerate(pairs):
        pi = [int(t) for t in tokenizer.encode(p)]
        ri = [int(t) for t in tokenizer.encode(r)]
        if len(pi) >= length:
            raise ValueError(f"pair {i}: the prompt has {len(pi)} tokens, no room left in length {length}")
        ids = (pi + ri)[: length + 1]
        rows[i, : len(ids)] = torch.tensor(ids)
        prompt[i, : len(pi)] = True

    def batch_fn(step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(pairs), (batch_size,), generator=generator)
        return rows[idx], prompt[idx]

    return batch_fn
