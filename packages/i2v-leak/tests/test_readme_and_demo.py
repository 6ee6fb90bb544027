"""The README's quick start runs as written; the tour demo runs (slow: opt in with --run-slow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("diffusers")

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quick_start_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "the README lost its python example"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], str(README), "exec"), {"__name__": "readme"})
    assert (tmp_path / "latent_stats.safetensors").is_file()
    assert "torch.Size([1, 2, 3, 32, 32])" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_runs(tmp_path):
    import torch
    from i2v_leak.demo import run_demo

    from gen_common.demo import DemoContext

    r = run_demo(DemoContext(tmp_path, torch.device("cpu")))
    assert r.metrics["min_kl_improvement_over_M"] > 0
    assert r.metrics["zero_snr_analytic_var"] == 1.0
    assert all(Path(f).is_file() for f in r.figures)
