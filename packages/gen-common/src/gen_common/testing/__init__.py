"""Test helpers: single-threaded torch, seeded generators, tolerance and statistical asserts.

The tiny offline diffusers/transformers components live in `gen_common.testing.diffusers_tiny`
(install ``gen-common[testing-diffusers]``).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gen_common.device import num_threads

__all__ = [
    "assert_close",
    "assert_refused_without_writing",
    "assert_within_sigmas",
    "readme_python_blocks",
    "run_readme_example",
    "seeded",
    "single_thread",
]


def assert_refused_without_writing(
    main: Any, argv: list[str], needle: str, prog: str, tmp_path: Path, capsys: Any
) -> None:
    """A console script refuses ``argv`` with exit code 2 and one line ``PROG: error: ...`` containing ``needle``,
    and the ``--out`` folder, which holds a user's file, is left exactly as it was."""
    out = tmp_path / "refused-out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and err.startswith(f"{prog}: error:"), err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"


def single_thread(threads: int = 1) -> contextlib.AbstractContextManager[None]:
    """Run torch with ``threads`` intra-op threads inside the block (tests on a shared 2-core machine)."""
    return num_threads(threads)


def seeded(seed: int = 0) -> torch.Generator:
    """A CPU generator with a fixed seed."""
    return torch.Generator().manual_seed(seed)


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double()
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def assert_close(
    actual: Any, expected: Any, *, rtol: float = 1e-6, atol: float = 1e-8, msg: str = ""
) -> None:
    """|actual − expected| ≤ atol + rtol·|expected| element-wise, with the worst offender in the message."""
    a, e = _as_tensor(actual), _as_tensor(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{msg} shape {tuple(a.shape)} != {tuple(e.shape)}")
    err = (a - e).abs()
    tol = atol + rtol * e.abs()
    bad = ~(err <= tol)
    if bad.any():
        i = int(torch.argmax((err - tol).reshape(-1)))
        raise AssertionError(
            f"{msg} {int(bad.sum())}/{a.numel()} elements differ; worst at flat index {i}: "
            f"actual {a.reshape(-1)[i].item():.8g} vs expected {e.reshape(-1)[i].item():.8g} "
            f"(atol {atol:g}, rtol {rtol:g})"
        )


def assert_within_sigmas(
    estimate: float, expected: float, stderr: float, sigmas: float = 5.0, msg: str = ""
) -> None:
    """A Monte Carlo estimate agrees with the exact value to within ``sigmas`` standard errors."""
    if not math.isfinite(estimate):
        raise AssertionError(f"{msg} estimate is {estimate}")
    if abs(estimate - expected) > sigmas * stderr:
        raise AssertionError(
            f"{msg} estimate {estimate:.6g} differs from {expected:.6g} by {abs(estimate - expected):.3g} "
            f"> {sigmas}·stderr ({sigmas * stderr:.3g})"
        )


def readme_python_blocks(readme: str | os.PathLike[str]) -> list[str]:
    """The bodies of the fenced ```python blocks of a README, in order."""
    return re.findall(r"```python\n(.*?)```", Path(readme).read_text(encoding="utf-8"), flags=re.S)


def run_readme_example(readme: str | os.PathLike[str], block: int = 0) -> dict[str, Any]:
    """Run python block ``block`` of ``readme`` as a script (``__name__ == "readme"``, tracebacks name the README);
    returns its namespace. A README without that block fails the test."""
    blocks = readme_python_blocks(readme)
    assert len(blocks) > block, f"{readme} lost its python example (block {block})"
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(compile(blocks[block], str(readme), "exec"), namespace)
    return namespace
