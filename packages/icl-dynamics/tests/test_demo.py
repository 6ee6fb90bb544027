import importlib
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gen_common.demo import DemoContext

demo = importlib.import_module("icl_dynamics.demo")


def test_demo_runs_and_reports(tmp_path, monkeypatch):
    from icl_dynamics.sweep import paper_grid

    small = demo.SMALL
    assert (
        len(paper_grid(families=small.families, scales=small.scales)) == 9
    )  # 3 families × the paper's 3 inits
    monkeypatch.setattr(demo, "SMALL", replace(small, d=2, T=6, m=80, m_test=40, epochs=20))
    result = demo.run_demo(DemoContext(tmp_path, torch.device("cpu"), progress=False))
    assert len(result.tables[0].rows) == 9
    assert {"gaussian_max_rel_error_ab", "sparse_max_final_loss", "ones_max_offdiag"} <= set(result.metrics)
    assert all(Path(p).is_file() and Path(p).suffix == ".png" for p in result.figures)
    assert result.to_json()["title"].startswith("icl-dynamics")


@pytest.mark.gpu
def test_cuda_matches_cpu():
    from icl_dynamics.data import X1Dist, generate_sequences
    from icl_dynamics.model import LinearSelfAttention, LSAConfig
    from icl_dynamics.objective import loss_and_grad

    x = generate_sequences(
        64, 12, 3, X1Dist.gaussian(1.0), generator=torch.Generator().manual_seed(0), dtype="complex128"
    )
    model = LinearSelfAttention(LSAConfig(3, 0.5, 1.5, "complex128"))
    cpu = loss_and_grad(model.wpv, model.wkq, x)
    gpu_model = model.to("cuda")
    gpu = loss_and_grad(gpu_model.wpv, gpu_model.wkq, x.to("cuda"))
    assert gpu.loss == pytest.approx(cpu.loss, rel=1e-10)
    torch.testing.assert_close(gpu.grad_wkq.cpu(), cpu.grad_wkq)


def test_readme_quick_start_runs():
    """The README's Python example, executed as written."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(code.replace("print(", "_ = ("), "README.md", "exec"), scope)
    assert scope["result"].ab == pytest.approx(scope["theory"].predicted_ab, rel=0.02)
