from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).parents[1] / "README.md"


def test_readme_quick_start_runs(tmp_path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {})


def test_demo_runs_and_shows_the_claims(tmp_path):
    from longalign.demo import run_demo

    from gen_common.demo import DemoContext

    res = run_demo(DemoContext(out_dir=tmp_path, device=torch.device("cpu"), scale="small", seed=0))
    m = res.metrics
    assert m["prompt tokens"] > 150 and m["tokens plain CLIP drops"] > 70
    assert m["segment rows kept"] == m["prompt tokens"] - 2 + m["segments"]
    assert m["max |relevant + irrelevant − t·f|"] < 1e-12 and m["max |∇_f score(w=0) · v|"] < 1e-12
    assert m["score after"] > m["score before"]
    assert all(p.is_file() for p in res.figures)
