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

__all__ = ["SHIFT_MODULES", "run_shift_study", "shift_table", "stdlib_docstrings"]

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


def run_shift_study(
    text: str | None = None,
    shifted_text: str | None = None,
    *,
    size: str = "tiny-49k",
    steps: int = 600,
    batch_size: int = 16,
    length: int = 32,
    lr: float = 1e-2,
    windows: int = 64,
    num_samples: int = 32,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Train an MDM and an ARM on ``text`` (default: the bundled corpus) and compare their held-out loss with their
    loss on ``shifted_text`` (default: stdlib docstrings), tokenised with the training alphabet."""
    from gen_common.text import bundled_corpus
    from mdm_scaling.config import preset
    from mdm_scaling.data import TokenData, make_batch_fn
    from mdm_scaling.training import paper_config, train_pair

    data = TokenData.from_text(text if text is not None else bundled_corpus())
    assert data.tokenizer is not None
    shifted = data.tokenizer.encode(
        shifted_text if shifted_text is not None else stdlib_docstrings(), errors="replace"
    )
    mcfg = preset(size, vocab_size=data.vocab_size, block_size=length + 1)
    settings = paper_config(steps, lr, log_every=max(1, steps), seed=seed)
    models = train_pair(
        make_batch_fn(data.train, batch_size, length), mcfg, settings, device=device, progress=progress
    )
    return shift_table(
        models, data.val, shifted, length=length, windows=windows, num_samples=num_samples, seed=seed
    )
