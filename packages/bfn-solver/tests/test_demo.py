"""The tour demo end to end (about 30-60 s on a CPU: opt-in)."""

from pathlib import Path

import pytest
import torch

from gen_common.demo import DemoContext


@pytest.mark.slow
def test_demo_runs_and_reports(tmp_path: Path):
    from bfn_solver.demo import run_demo

    res = run_demo(DemoContext(tmp_path, torch.device("cpu"), progress=False))
    assert all(Path(f).is_file() for f in res.figures)
    assert len(res.figures) == 2
    assert res.metrics["order continuous/solver++2"] > 1.7
    assert res.metrics["continuous/solver++2 speed-up vs bfn@1000"] >= 10
