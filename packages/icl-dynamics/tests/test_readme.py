import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quick_start_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    exec(compile(blocks[0], "README quick start", "exec"), {})
    ab, predicted = map(float, capsys.readouterr().out.split())
    assert predicted == pytest.approx(0.185586, abs=1e-6)  # the README's closed form, d = 3, T = 20
    assert ab == pytest.approx(0.1868, abs=5e-4)  # seeded, balanced x1: the README's printed value
    assert abs(ab / predicted - 1) < 0.01


def test_python_dash_m_runs_the_cli():
    res = subprocess.run(
        [sys.executable, "-m", "icl_dynamics", "theory", "--x1", "gaussian", "--sigma", "1", "--d", "5", "--T",
         "100", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["predicted_ab"] == pytest.approx(0.191905, abs=1e-6)  # the README's bash example
    assert out["predicted_ab_limit"] == 0.2
    bad = subprocess.run([sys.executable, "-m", "icl_dynamics", "theory", "--T", "2"], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
