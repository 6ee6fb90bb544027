import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quick_start_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    exec(compile(blocks[0], "README quick start", "exec"), {})
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 3
    assert 0 < float(out[0]) < 6
    assert 0 < float(out[1]) < 6
    assert out[2].startswith("['The ")
