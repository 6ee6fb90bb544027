"""The README's quick start runs as written; the tour demo runs (slow: opt in with --run-slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gen_common.testing import run_readme_example

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quick_start_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run_readme_example(README)
    assert (tmp_path / "posecrafter.gif").is_file()
    assert "(2, 32, 32, 3)" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_runs(tmp_path):
    import torch
    from posecrafter.demo import run_demo

    from gen_common.demo import DemoContext

    r = run_demo(DemoContext(tmp_path, torch.device("cpu")))
    assert r.metrics["affine_blob_peak_error_latent_px"] <= 1.0
    assert r.metrics["ddim_round_trip_error_analytic"] < 0.05
    assert r.metrics["ddim_round_trip_error_x_independent_eps"] < 1e-10
    assert r.metrics["edited_parts"] > 0
    assert all(Path(f).is_file() for f in r.figures)
