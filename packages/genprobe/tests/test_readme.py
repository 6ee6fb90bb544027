"""The README's quick start runs as written (and gives the toy's expected pattern)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quick_start_runs(tmp_path, monkeypatch, capsys):
    code = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    assert "accuracy" in capsys.readouterr().out
    ((cutoff, low, high),) = scope["report"].rows
    assert cutoff == 5.0
    assert abs(low - 0.5) < 0.15
    assert high > 0.9
    assert (tmp_path / "runs" / "quickstart" / "frequency_sweep.png").is_file()
