import pytest
import torch
from mdm_scaling.demo import run_demo

from gen_common.demo import DemoContext


@pytest.mark.slow
def test_demo_runs_and_writes_figures(tmp_path):
    res = run_demo(DemoContext(tmp_path, torch.device("cpu")))
    assert res.metrics["runs"] >= 18
    assert all(p.is_file() for p in res.figures)
    assert 0.0 <= res.metrics["reverse_infill_mdm"] <= 1.0
