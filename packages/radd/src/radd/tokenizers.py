"""Tokenizers: the character tokenizer of the bundled corpus (default, offline), or a Hugging Face tokenizer from a
local folder (GPT-2 for the released checkpoints; needs ``pip install "radd-diffusion[hf]"``).

Both expose ``encode(text) -> LongTensor``, ``decode(ids) -> str``, ``vocab_size`` and ``save(folder)``; a model
folder written by the CLI keeps its tokenizer beside the weights, so ``load_tokenizer(model_dir)`` finds it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import torch

from gen_common.text import CharTokenizer, bundled_corpus

__all__ = ["CHAR_TOKENIZER_FILE", "CharTokenizerAdapter", "HFTokenizer", "Tokenizer", "load_tokenizer"]

CHAR_TOKENIZER_FILE = "radd_tokenizer.json"
_HF_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")


class Tokenizer(Protocol):
    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> torch.Tensor: ...

    def decode(self, ids: torch.Tensor | list[int]) -> str: ...

    def save(self, folder: str | os.PathLike[str]) -> None: ...


class CharTokenizerAdapter:
    """gen_common's `CharTokenizer` behind the folder-level save/load of this package (mask id decodes to ``_``)."""

    def __init__(self, tok: CharTokenizer) -> None:
        self.tok = tok

    @classmethod
    def from_corpus(cls, text: str | None = None) -> CharTokenizerAdapter:
        return cls(CharTokenizer.from_text(bundled_corpus() if text is None else text))

    @property
    def vocab_size(self) -> int:
        return self.tok.vocab_size

    def encode(self, text: str) -> torch.Tensor:
        return self.tok.encode(text, errors="replace" if self.tok.replacement is not None else "strict")

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        return self.tok.decode(ids)

    def unknown_characters(self, text: str) -> int:
        """How many characters of ``text`` are outside the alphabet (`encode` replaces them)."""
        return sum(1 for ch in text if ch not in self.tok.index)

    def save(self, folder: str | os.PathLike[str]) -> None:
        self.tok.save(Path(folder) / CHAR_TOKENIZER_FILE)


class HFTokenizer:
    """A ``transformers`` tokenizer loaded from a LOCAL folder (nothing downloads)."""

    def __init__(self, tok: Any) -> None:
        self.tok = tok

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str]) -> HFTokenizer:
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise ImportError(
                'a Hugging Face tokenizer needs transformers: pip install "radd-diffusion[hf]"'
            ) from exc
        p = Path(folder).expanduser()
        if not p.is_dir():
            raise FileNotFoundError(
                f"tokenizer folder not found: {p} (download it once, e.g. `huggingface-cli download gpt2 "
                "--local-dir gpt2`, and pass that folder)"
            )
        return cls(AutoTokenizer.from_pretrained(str(p), local_files_only=True))

    @property
    def vocab_size(self) -> int:
        return len(self.tok)

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor(self.tok(text, add_special_tokens=False)["input_ids"], dtype=torch.long)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        seq = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        n = self.vocab_size
        # mask ids (= V) are shown as a visible placeholder instead of being dropped
        parts, run = [], []
        for i in seq:
            if 0 <= i < n:
                run.append(i)
            else:
                parts.append(self.tok.decode(run) if run else "")
                parts.append("[MASK]")
                run = []
        parts.append(self.tok.decode(run) if run else "")
        return "".join(parts)

    def save(self, folder: str | os.PathLike[str]) -> None:
        self.tok.save_pretrained(str(folder))


def load_tokenizer(spec: str | os.PathLike[str] | None = None) -> CharTokenizerAdapter | HFTokenizer:
    """``None``/``"char"``: the character tokenizer of the bundled corpus; a model folder (uses the tokenizer saved
    in it); a char tokenizer JSON file; or a local Hugging Face tokenizer folder."""
    if spec is None or str(spec) == "char":
        return CharTokenizerAdapter.from_corpus()
    p = Path(spec).expanduser()
    if p.is_file():
        return CharTokenizerAdapter(CharTokenizer.load(p))
    if p.is_dir():
        if (p / CHAR_TOKENIZER_FILE).is_file():
            return CharTokenizerAdapter(CharTokenizer.load(p / CHAR_TOKENIZER_FILE))
        if any((p / f).is_file() for f in _HF_FILES):
            return HFTokenizer.from_folder(p)
        raise FileNotFoundError(
            f"{p} holds no tokenizer ({CHAR_TOKENIZER_FILE} or Hugging Face tokenizer files); pass --tokenizer"
        )
    raise FileNotFoundError(f"tokenizer not found: {p} (use 'char', a tokenizer file, or a local folder)")
