"""The README's quick start runs as written; the tour demo runs (it is the acceptance test's setting, so slow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quick_start_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "the README lost its python example"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    m = re.search(r"held-out L1 ([0-9.]+) -> ([0-9.]+) after (\d+) network evaluations", out)
    assert m and float(m.group(2)) < 0.6 * float(m.group(1)) and int(m.group(3)) > 0
    assert "t2 = [901, 901, 501]" in out  # N = 10, 3 outer iterations: the released rule on the toy grid
    assert (tmp_path / "toy.obj").read_text().count("\nf ") > 100


@pytest.mark.slow
def test_demo_runs(tmp_path):
    import torch
    from microdreamer.demo import run_demo

    from gen_common.demo import DemoContext

    r = run_demo(DemoContext(tmp_path, torch.device("cpu")))
    assert r.metrics["nfe_ratio"] >= 5 and r.metrics["mesh_watertight"]
    assert all(Path(f).is_file() for f in r.figures)
