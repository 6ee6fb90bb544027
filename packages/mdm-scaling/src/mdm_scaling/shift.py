"""Temporal / distribution shift (Sec. 5, Fig. 4: models trained on data up to a date, evaluated on later
FineWeb slices): the loss of both archs on held-out in-distribution text and on a slice of a different
distribution. Offline default: trained on the pydoc help topics, shifted to the docstrings of stdlib modules (API
reference prose instead of language-reference prose). Users pass their own slices (e.g. later crawl dumps)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import torch

from gen_common.seeding import make_generator, split_seed
from mdm_scaling.data import eval_windows
from mdm_scaling.objectives import validation_loss

__all__ = ["SHIFT_MODULES", "shift_table", "stdlib_docstrings"]

SHIFT_MODULES = (
    "argparse", "collections", "csv", "datetime", "functools", "heapq", "itertools", "json", "logging",
    "os", "pathlib", "random", "re", "shutil", "statistics", "string", "textwrap", "threading", "unittest",
    "urllib.parse",
)  # fmt: skip


def stdlib_docstrings(max_chars: int | None = 200_000) -> str:
    """Docstrings of a fixed list of stdlib modules and their public members (deterministic per Python version)."""
    parts = []
    for name in SHIFT_MODULES:
        mod = importlib.import_module(name)
        if mod.__doc__:
            parts.append(mod.__doc__.strip())
        for attr in sorted(getattr(mod, "__all__", None) or dir(mod)):
            if attr.startswith("_"):
                continue
            doc = getattr(getattr(mod, attr, None), "__doc__", None)
            if isinstance(doc, str) and len(doc) > 40:
                parts.append(doc.strip())
    seen, uniq = set(), []
    for p in parts:  # re-exported members repeat their docstrings
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    text = "\n\n".join(uniq)
    return text if max_chars is None else text[:max_chars]


@torch.no_grad()
def shift_table(
    models: Mapping[str, Any],
    in_dist: torch.Tensor,
    shifted: torch.Tensor,
    *,
    length: int,
    windows: int = 64,
    num_samples: int = 32,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Loss (nats/token) of every model on ``windows`` windows of each stream, and the degradation."""
    ins = eval_windows(in_dist, windows, length)
    outs = eval_windows(shifted, windows, length)
    rows = []
    for i, (arch, m) in enumerate(models.items()):
        dev = next(m.parameters()).device
        a = validation_loss(
            m, ins.to(dev), num_samples=num_samples, generator=make_generator(split_seed(seed, i))
        )
        b = validation_loss(
            m, outs.to(dev), num_samples=num_samples, generator=make_generator(split_seed(seed, i, 1))
        )
        rows.append({"arch": arch, "in_dist": a, "shifted": b, "delta": b - a, "ratio": b / a})
    return rows
