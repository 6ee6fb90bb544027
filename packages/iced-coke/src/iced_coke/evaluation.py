"""Evaluation: per-pair concept scores per method, success rate at a threshold, and a contact sheet per pair.

A pair counts as a success for a method when both concepts score above the threshold (``S1 > τ and S2 > τ``, the
search's acceptance rule), i.e. neither concept is lost.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from iced_coke.pairs import ConceptPair

__all__ = ["EvalReport", "PairScores", "contact_sheet", "evaluate_methods"]


@dataclass(frozen=True)
class PairScores:
    prompt: str
    method: str
    s1: float
    s2: float
    success: bool
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class EvalReport:
    threshold: float
    rows: list[PairScores]

    def success_rate(self) -> dict[str, float]:
        out: dict[str, list[bool]] = {}
        for r in self.rows:
            out.setdefault(r.method, []).append(r.success)
        return {m: sum(v) / len(v) for m, v in out.items()}

    def mean_scores(self) -> dict[str, tuple[float, float]]:
        out: dict[str, list[PairScores]] = {}
        for r in self.rows:
            out.setdefault(r.method, []).append(r)
        return {m: (sum(r.s1 for r in v) / len(v), sum(r.s2 for r in v) / len(v)) for m, v in out.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "success_rate": self.success_rate(),
            "mean_scores": {m: list(v) for m, v in self.mean_scores().items()},
            "rows": [
                {
                    "prompt": r.prompt,
                    "method": r.method,
                    "s1": r.s1,
                    "s2": r.s2,
                    "success": r.success,
                    **r.extra,
                }
                for r in self.rows
            ],
        }


def evaluate_methods(
    pairs: Iterable[ConceptPair],
    methods: Mapping[str, Callable[[ConceptPair], Sequence[Image.Image]]],
    scorer: Any,
    threshold: float = 0.72,
    sheets: Callable[[ConceptPair], str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> EvalReport:
    """Score every method's images for every pair; with ``sheets`` (a folder, or a function giving each pair's
    path), write a contact sheet per pair (``<slug>.png``, one row per method)."""
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    rows: list[PairScores] = []
    for pair in pairs:
        sheet: dict[str, Sequence[Image.Image]] = {}
        for name, make in methods.items():
            images = make(pair)
            s1, s2 = scorer.score_pair(images, pair)
            rows.append(PairScores(pair.prompt, name, s1, s2, s1 > threshold and s2 > threshold))
            sheet[f"{name}  S1={s1:.3f} S2={s2:.3f}"] = images
            if progress:
                progress(f"{pair.prompt} / {name}: S1={s1:.3f} S2={s2:.3f}")
        if sheets is not None:
            path = sheets(pair) if callable(sheets) else Path(sheets) / f"{pair.slug}.png"
            contact_sheet(sheet, path, title=pair.prompt)
    return EvalReport(threshold, rows)


def contact_sheet(
    rows: Mapping[str, Sequence[Image.Image]],
    path: str | os.PathLike[str],
    title: str | None = None,
    cell: int = 128,
) -> Path:
    """A PNG grid: one labelled row per entry of ``rows``, images scaled to ``cell`` px. Written atomically."""
    from gen_common.atomic import atomic_path

    ncol = max((len(v) for v in rows.values()), default=1)
    label_h, title_h = 14, (16 if title else 0)
    W = max(ncol * cell, 240)
    H = title_h + len(rows) * (cell + label_h)
    sheet = Image.new("RGB", (W, max(H, 1)), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((4, 2), title, fill="black")
    y = title_h
    for label, images in rows.items():
        draw.text((4, y + 1), label, fill="black")
        for j, im in enumerate(images):
            sheet.paste(im.convert("RGB").resize((cell, cell), Image.NEAREST), (j * cell, y + label_h))
        y += cell + label_h
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(p) as tmp:
        sheet.save(tmp, format="PNG")
    return p
