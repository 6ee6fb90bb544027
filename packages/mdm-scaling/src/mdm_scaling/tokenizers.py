"""Tokenizers the CLI can load: this package's character tokenizer (``tokenizer.json`` written beside a model),
or a Hugging Face tokenizer folder/id (e.g. TinyLlama's, for converted SMDM checkpoints; needs ``transformers``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gen_common.text import CharTokenizer

__all__ = ["TOKENIZER_FILE", "load_tokenizer"]

TOKENIZER_FILE = "tokenizer.json"


def load_tokenizer(path: str | os.PathLike[str]) -> Any:
    """A `CharTokenizer` from a ``tokenizer.json`` (or a folder holding one), else ``AutoTokenizer``."""
    p = Path(path)
    f = p / TOKENIZER_FILE if p.is_dir() else p
    if f.is_file():
        try:
            kind = json.loads(f.read_text(encoding="utf-8")).get("type")
        except (json.JSONDecodeError, AttributeError):
            kind = None
        if kind == "char":
            return CharTokenizer.load(f)
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise ValueError(
            f"{path} is not a character tokenizer file; loading a Hugging Face tokenizer needs transformers "
            '(pip install "mdm-scaling[hf]")'
        ) from exc
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:  # missing files, offline hub: one readable message
        raise ValueError(f"cannot load a tokenizer from {path}: {exc}") from exc
