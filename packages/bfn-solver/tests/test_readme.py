"""The README's quick start runs as written."""

import re
from pathlib import Path


def test_readme_quick_start_runs():
    text = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index("## Quick start")
    code = re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)
    exec(compile(code, "README quick start", "exec"), {})
