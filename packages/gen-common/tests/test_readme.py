"""The README's quick start is run as a test, so it cannot rot."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_quick_start_runs(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    assert scope["result"].history[-1]["loss"] < scope["result"].history[0]["loss"]
    assert (tmp_path / "runs/net-final/model.safetensors").is_file()
    assert scope["again"].config == scope["net"].config


def test_metrics_example_runs(tmp_path, monkeypatch):
    import pytest

    pytest.importorskip("scipy")
    section = README.read_text(encoding="utf-8").split("## Metrics", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    assert scope["score"] > 0
    assert (tmp_path / "real_stats.npz").is_file()
    assert abs(scope["kid_mean"]) < 10 and scope["kid_std"] >= 0
    from gen_common.metrics import fid, load_stats

    assert fid(scope["real"], load_stats(tmp_path / "real_stats.npz"), scope["pool"]) < 1e-8
