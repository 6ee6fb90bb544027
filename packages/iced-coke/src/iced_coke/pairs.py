"""Concept pairs: the unit of LC-Mis (a prompt that combines an easily lost concept with a dominant one).

File formats read and written:

* the official ``prompt.json``: ``{"prompt0": {"prompt", "first_prompt", "first_describe", "second_prompt",
  "second_describe"}, ...}`` (keys in file order);
* a JSON list of such objects, or an object holding one list (``{"data": [...]}``) or lists per pattern
  (``{"pattern name": [...], ...}``), as the published Level-5 files group pairs;
* JSON Lines, one pair per line.

Extra fields (a pattern, a level, ...) are kept in ``ConceptPair.extra`` and written back unchanged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gen_common.atomic import atomic_write_text

__all__ = ["FIELDS", "ConceptPair", "PairFileError", "load_pairs", "save_pairs"]

FIELDS = ("prompt", "first_prompt", "first_describe", "second_prompt", "second_describe")

# Alternative spellings seen in hand-written pair files; the official names win when both are present.
_ALIASES = {
    "first_concept": "first_prompt",
    "second_concept": "second_prompt",
    "first_description": "first_describe",
    "second_description": "second_describe",
    "concept_pair": "prompt",
}


class PairFileError(ValueError):
    """A pair file cannot be read: missing, not JSON, or an entry lacks a field."""


@dataclass(frozen=True)
class ConceptPair:
    """One LC-Mis pair. ``first_prompt`` is the easily lost concept (MoCE samples it first), e.g.
    prompt "A tea cup of iced coke.", first "tea cup", second "iced coke"."""

    prompt: str
    first_prompt: str
    first_describe: str
    second_prompt: str
    second_describe: str
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in FIELDS:
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip():
                raise PairFileError(f"concept pair field {name!r} must be a non-empty string, got {v!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "pair") -> ConceptPair:
        if not isinstance(data, Mapping):
            raise PairFileError(
                f"{where}: expected an object with fields {', '.join(FIELDS)}, got {type(data).__name__}"
            )
        d = dict(data)
        for alias, name in _ALIASES.items():
            if alias in d and name not in d:
                d[name] = d.pop(alias)
        missing = [f for f in FIELDS if f not in d]
        if missing:
            raise PairFileError(
                f"{where} is missing field(s) {', '.join(missing)}; every pair needs {', '.join(FIELDS)}"
            )
        extra = {k: v for k, v in d.items() if k not in FIELDS}
        try:
            return cls(**{f: d[f] for f in FIELDS}, extra=extra)
        except PairFileError as exc:
            raise PairFileError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f: getattr(self, f) for f in FIELDS}
        out.update(self.extra)
        return out

    @property
    def slug(self) -> str:
        """A file-system-safe name for output folders."""
        s = "".join(c if c.isalnum() else "_" for c in self.prompt.strip().lower())
        return "_".join(p for p in s.split("_") if p)[:80] or "pair"


def _entries(obj: Any, where: str) -> list[tuple[str, Any]]:
    """Flatten the accepted top-level layouts into (location, entry) tuples."""
    if isinstance(obj, list):
        return [(f"{where}[{i}]", e) for i, e in enumerate(obj)]
    if isinstance(obj, Mapping):
        if all(f in obj for f in ("prompt", "first_prompt")):
            return [(where, obj)]
        out: list[tuple[str, Any]] = []
        for key, value in obj.items():
            if isinstance(value, list):  # lists per pattern: the pattern name becomes an extra field
                for i, e in enumerate(value):
                    entry = dict(e) if isinstance(e, Mapping) else e
                    if isinstance(entry, dict) and key != "data":
                        entry.setdefault("pattern", key)
                    out.append((f"{where}[{key!r}][{i}]", entry))
            else:
                out.append((f"{where}[{key!r}]", value))
        return out
    raise PairFileError(f"{where}: expected a JSON object or list of concept pairs, got {type(obj).__name__}")


def load_pairs(path: str | os.PathLike[str]) -> list[ConceptPair]:
    """Read concept pairs from an official ``prompt.json``, a Level-5 style JSON file, or JSON Lines."""
    p = Path(path)
    if not p.is_file():
        raise PairFileError(
            f"pair file {p} not found; pass a prompt.json-style file (fields {', '.join(FIELDS)})"
        )
    text = p.read_text(encoding="utf-8")
    where = p.name
    try:
        if p.suffix == ".jsonl":
            items = [
                (f"{where}:{n}", json.loads(line))
                for n, line in enumerate(text.splitlines(), 1)
                if line.strip()
            ]
        else:
            items = _entries(json.loads(text), where)
    except json.JSONDecodeError as exc:
        raise PairFileError(f"{where} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    pairs = [ConceptPair.from_dict(e, loc) for loc, e in items]
    if not pairs:
        raise PairFileError(f"{where} holds no concept pairs")
    return pairs


def save_pairs(pairs: Iterable[ConceptPair], path: str | os.PathLike[str]) -> Path:
    """Write pairs as the official ``prompt.json`` (``prompt0``, ``prompt1``, ...) or as JSON Lines (``.jsonl``)."""
    p = Path(path)
    pairs = list(pairs)
    if p.suffix == ".jsonl":
        text = "".join(json.dumps(q.to_dict(), ensure_ascii=False) + "\n" for q in pairs)
    else:
        text = json.dumps(
            {f"prompt{i}": q.to_dict() for i, q in enumerate(pairs)}, indent=4, ensure_ascii=False
        )
    return atomic_write_text(p, text)
