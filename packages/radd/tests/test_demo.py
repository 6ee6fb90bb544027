"""The tour's demo (about a minute on an idle 2-core CPU: opt-in)."""

from __future__ import annotations

import pytest
import torch

from gen_common.demo import DemoContext


@pytest.mark.slow
def test_demo_runs_and_beats_the_unigram_baseline(tmp_path):
    from radd.demo import run_demo

    res = run_demo(DemoContext(tmp_path, torch.device("cpu"), progress=False))
    assert res.metrics["val_nll_bound_k_dce"] < res.metrics["unigram_baseline"]
    assert all(p.is_file() for p in res.figures)
    nfe_table = res.tables[1]
    assert all(row[-1] == "yes" for row in nfe_table.rows)  # cached ≡ uncached
