"""The README's quick start runs as written; the tour demo runs (slow: opt in with --run-slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gen_common.testing import run_readme_example

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quick_start_runs(capsys):
    run_readme_example(README)
    assert "13 [10, 15, 14, 11, 13]" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_runs(tmp_path):
    import torch
    from iced_coke.demo import run_demo

    from gen_common.demo import DemoContext

    r = run_demo(DemoContext(tmp_path, torch.device("cpu")))
    assert r.metrics["max_abs_identity_error"] == 0.0
    assert r.metrics["unet_calls_cached"] == r.metrics["unet_calls_expected"]
    assert all(Path(f).is_file() for f in r.figures)
