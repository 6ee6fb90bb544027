"""The release tool's dry run changes nothing; the tour discovers demos and writes its report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import release
from _workspace import ROOT

TOOLS = ROOT / "tools"


def _status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout


def test_release_dry_run_changes_nothing(capsys):
    before = _status()
    pyproject = (ROOT / "packages/gen-common/pyproject.toml").read_text()
    assert release.main(["gen-common", "minor", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "-> " in out and "gen-common-v" in out
    assert _status() == before
    assert (ROOT / "packages/gen-common/pyproject.toml").read_text() == pyproject


def test_version_bumps_and_changelog_split():
    assert release.bump("1.2.3", "major") == "2.0.0"
    assert release.bump("1.2.3", "minor") == "1.3.0"
    assert release.bump("1.2.3", "patch") == "1.2.4"
    _head, notes, rest = release.split_changelog(
        "# C\n\n## Unreleased\n- a\n- b\n\n## 0.1.0 - 2026-01-01\n- old\n"
    )
    assert notes == "- a\n- b" and rest.startswith("## 0.1.0")
    text = release.set_version(
        '[build-system]\nversion = "9"\n[project]\nname = "x"\nversion = "0.1.0"\n', "0.2.0"
    )
    assert 'version = "9"' in text and 'version = "0.2.0"' in text


def test_unknown_package_is_refused():
    with pytest.raises(SystemExit, match="unknown package"):
        release.main(["nope", "patch", "--dry-run"])


def test_tour_lists_and_rejects_unknown(tmp_path):
    listed = subprocess.run(
        [sys.executable, str(TOOLS / "tour.py"), "--list"], capture_output=True, text=True, check=True
    )
    assert "radd" in listed.stdout
    bad = subprocess.run(
        [sys.executable, str(TOOLS / "tour.py"), "--only", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "unknown demo" in bad.stderr


def test_tour_report_for_one_demo(tmp_path):
    # The cheapest installed demo keeps this fast; the full tour is the README's first command.
    proc = subprocess.run(
        [
            sys.executable,
            str(TOOLS / "tour.py"),
            "--only",
            "icl-dynamics",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["failed"] == []
    data = json.loads(Path(tmp_path / "results.json").read_text())
    assert data["demos"]["icl-dynamics"]["status"] == "ok"
    assert "<html>" in (tmp_path / "index.html").read_text()
