"""tools/: a release bumps, moves notes, builds, smoke-tests and tags one package (a dry run changes nothing);
the tour discovers demos, survives a broken one and writes its report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import release
import tour
from _workspace import ROOT

TOOLS = ROOT / "tools"


def _status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout


def test_release_dry_run_changes_nothing(capsys):
    before = _status()
    pyproject = (ROOT / "packages/gen-common/pyproject.toml").read_text()
    assert release.main(["gen-common", "patch", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "-> " in out and "gen-common-v" in out
    assert (
        "radd-diffusion" in out.split("dependents:")[1]
    )  # the plan names the packages that depend on gen-common
    # A minor bump leaves the siblings' `gen-common>=0.1,<0.2`: refused, naming them, unless told to raise them.
    assert release.main(["gen-common", "minor", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "mdm-scaling" in err and "--raise-dependents" in err
    assert release.main(["gen-common", "minor", "--dry-run", "--raise-dependents"]) == 0
    assert "gen-common>=0.2,<0.3" in capsys.readouterr().out.split("raise:")[1]
    assert _status() == before
    assert (ROOT / "packages/gen-common/pyproject.toml").read_text() == pyproject


def test_siblings_carry_compatible_bounds():
    # Every requirement on a workspace sibling has an upper bound that its current version satisfies.
    for name, m in release.members(ROOT).items():
        data = release.tomllib.loads((m.path / "pyproject.toml").read_text())
        for req in release._requirement_strings(data):
            dep = release._req_name(req)
            if dep in release.members(ROOT) and dep != name:
                spec = release.Requirement(req).specifier
                assert any(s.operator == "<" for s in spec), f"{m.dist}: {req} has no upper bound"
                assert spec.contains(release.members(ROOT)[dep].version), f"{m.dist}: {req}"
    assert release.compatible_spec("0.2.0") == ">=0.2,<0.3" and release.compatible_spec("1.4.2") == ">=1.4,<2"
    assert (
        release.raise_requirement("gen-common[train,hub]>=0.1,<0.2", "0.2.0")
        == "gen-common[train,hub]>=0.2,<0.3"
    )


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


class _FakeEntryPoint:
    def __init__(self, name, fn):
        self.name, self.value, self._fn = name, f"fake:{name}", fn

    def load(self):
        return self._fn


def _good_demo(ctx):
    from gen_common import DemoResult, Table, new_figure, save_figure

    fig, ax = new_figure()
    ax.plot([0, 1], [0, ctx.seed])
    png = save_figure(fig, ctx.path("line.png"))
    return DemoResult(
        "A good demo",
        f"ran at {ctx.scale} scale on {ctx.device}",
        {"score": 0.25, "seed": ctx.seed},
        [Table("numbers", ["n", "n²"], [[2, 4], [3, None]])],
        [png],
        headline={
            "claim": "lines go up",
            "paper": "1.0",
            "measured": f"{ctx.seed}",
            "reproduces": ctx.seed > 0,
        },
        captions={"line.png": "a line that should go up"},
    )


def _broken_demo(ctx):
    raise RuntimeError("this demo is broken")


@pytest.fixture
def fake_demos(monkeypatch):
    demos = {"good": _FakeEntryPoint("good", _good_demo), "broken": _FakeEntryPoint("broken", _broken_demo)}
    monkeypatch.setattr(tour, "discover_demos", lambda: demos)
    return demos


def _summary(capsys):
    captured = capsys.readouterr()
    return json.loads(captured.out.strip().splitlines()[-1]), captured.err


def test_tour_writes_the_report_and_survives_a_broken_demo(fake_demos, tmp_path, capsys):
    out = tmp_path / "tour"
    assert tour.main(["--out", str(out), "--device", "cpu", "--seed", "3"]) == 1, (
        "a failed demo fails the tour"
    )
    summary, err = _summary(capsys)
    assert summary["ran"] == ["good", "broken"] and summary["failed"] == ["broken"]
    assert "good: ok" in err and "broken: FAILED" in err
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["scale"] == "small" and data["meta"]["seed"] == 3
    good = data["demos"]["good"]
    assert good["status"] == "ok" and good["metrics"] == {"score": 0.25, "seed": 3}
    assert good["tables"][0]["rows"] == [[2, 4], [3, None]]
    assert good["headline"]["claim"] == "lines go up" and good["headline"]["reproduces"] is True
    assert (out / "good" / "line.png").read_bytes()[:4] == b"\x89PNG"
    assert "this demo is broken" in data["demos"]["broken"]["error"]
    page = (out / "index.html").read_text()
    assert "A good demo" in page and "<img src='good/line.png'" in page and "n²" in page
    assert "class='fail'" in page and "this demo is broken" in page
    # Headline first: the summary table (claim, paper, measured, verdict) precedes every package's details.
    summary = page.index("Headline results")
    assert summary < page.index("<section id='good'") and summary < page.index("<section id='broken'")
    assert "lines go up" in page[summary:] and "class='yes'>yes" in page and "class='fail'>failed" in page
    assert "<figcaption>a line that should go up</figcaption>" in page
    assert "None" not in page and "Settings: device cpu" in page
    # --only runs a subset; --scale large is passed through to the demos
    assert tour.main(["--only", "good", "--out", str(out), "--device", "cpu", "--scale", "large"]) == 0
    summary, _ = _summary(capsys)
    assert summary["ran"] == ["good"] and summary["failed"] == []
    assert "large scale" in json.loads((out / "results.json").read_text())["demos"]["good"]["summary"]


def test_tour_lists_and_rejects_bad_input(fake_demos, tmp_path, capsys):
    assert tour.main(["--list"]) == 0
    assert capsys.readouterr().out.splitlines() == ["good: fake:good", "broken: fake:broken"]
    assert tour.main(["--only", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown demo(s) nope; installed: good, broken" in capsys.readouterr().err
    assert tour.main(["--device", "tpu", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: unknown device")
    assert not list(tmp_path.iterdir()), "nothing is written on bad input"


def test_tour_without_demos_still_reports(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(tour, "discover_demos", dict)
    assert tour.main(["--out", str(tmp_path), "--device", "cpu"]) == 0
    summary, _ = _summary(capsys)
    assert summary["ran"] == [] and "no demos are installed" in summary["note"]
    assert "No demos are installed yet" in (tmp_path / "index.html").read_text()


def test_installed_demos_are_discovered():
    listed = subprocess.run(
        [sys.executable, str(TOOLS / "tour.py"), "--list"], capture_output=True, text=True, check=True
    )
    names = [line.split(":")[0] for line in listed.stdout.splitlines()]
    assert {"radd", "icl-dynamics"} <= set(names)


@pytest.mark.slow
def test_tour_report_for_one_real_demo(tmp_path):
    # A real package demo end to end, as `uv run tools/tour.py --only icl-dynamics` runs it (minutes on a busy CPU).
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


def _fake_package(root: Path, name: str, cli_body: str, deps: tuple[str, ...] = ()) -> None:
    pkg = root / "packages" / name
    (pkg / "src" / name).mkdir(parents=True)
    sources = "".join(f"{release._req_name(d)} = {{ workspace = true }}\n" for d in deps)
    (pkg / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        f"dependencies = {json.dumps(list(deps))}\n\n"
        f'[project.scripts]\n{name} = "{name}.cli:main"\n\n'
        '[build-system]\nrequires = ["hatchling>=1.25"]\nbuild-backend = "hatchling.build"\n\n'
        f'[tool.hatch.build.targets.wheel]\npackages = ["src/{name}"]\n'
        + (f"\n[tool.uv.sources]\n{sources}" if deps else "")
    )
    (pkg / "src" / name / "__init__.py").write_text(f'"""{name}."""\n\n__version__ = "0.1.0"\n')
    (pkg / "src" / name / "cli.py").write_text(cli_body)
    (pkg / "CHANGELOG.md").write_text(
        f"# Changelog: {name}\n\n## Unreleased\n- a new thing\n\n## 0.1.0 - 2020-01-01\n- first\n"
    )


@pytest.fixture
def fake_workspace(tmp_path, monkeypatch):
    """A throwaway two-package workspace in its own git repository (alpha works; beta's console script is broken)."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["packages/*"]\n')
    (root / ".gitignore").write_text("dist/\n.venv/\n")
    good = "import argparse\n\n\ndef main(argv=None):\n    argparse.ArgumentParser(prog='alpha').parse_args(argv)\n    return 0\n"
    _fake_package(root, "alpha", good)
    _fake_package(root, "beta", "raise SystemExit('broken on import')\n")
    for var, value in {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }.items():
        monkeypatch.setenv(var, value)
    for cmd in (
        ["git", "init", "-q"],
        ["uv", "lock", "--quiet"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "init"],
    ):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)
    return root


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def test_release_bumps_moves_notes_builds_smoke_tests_and_tags(fake_workspace, capsys):
    root = fake_workspace
    beta_before = {p: p.read_bytes() for p in (root / "packages/beta").rglob("*") if p.is_file()}
    assert release.main(["alpha", "minor", "--date", "2030-01-02", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "smoke test ok: import alpha -> 0.2.0" in out

    alpha = root / "packages/alpha"
    assert 'version = "0.2.0"' in (alpha / "pyproject.toml").read_text()
    assert '__version__ = "0.2.0"' in (alpha / "src/alpha/__init__.py").read_text()
    changelog = (alpha / "CHANGELOG.md").read_text()
    assert (
        "## Unreleased\n\n## 0.2.0 - 2030-01-02\n- a new thing\n\n## 0.1.0 - 2020-01-01\n- first\n"
        in changelog
    )
    assert sorted(p.name for p in (root / "dist/alpha").iterdir() if not p.name.startswith(".")) == [
        "alpha-0.2.0-py3-none-any.whl",
        "alpha-0.2.0.tar.gz",
    ]
    # One commit, tagged, touching only alpha's files and the lock; beta is byte-for-byte untouched.
    assert _git(root, "log", "-1", "--format=%s").strip() == "Release alpha 0.2.0"
    assert _git(root, "rev-list", "-n1", "alpha-v0.2.0") == _git(root, "rev-parse", "HEAD")
    changed = set(_git(root, "show", "--name-only", "--format=", "HEAD").split())
    assert changed == {
        "packages/alpha/pyproject.toml",
        "packages/alpha/src/alpha/__init__.py",
        "packages/alpha/CHANGELOG.md",
        "uv.lock",
    }
    assert {p: p.read_bytes() for p in beta_before} == beta_before
    assert _git(root, "status", "--porcelain") == ""
    # Nothing left to release: refused, nothing changes.
    head = _git(root, "rev-parse", "HEAD")
    assert release.main(["alpha", "patch", "--root", str(root)]) == 2
    assert "'Unreleased' section is empty" in capsys.readouterr().err
    assert _git(root, "rev-parse", "HEAD") == head


def _commit_all(root: Path, msg: str) -> None:
    subprocess.run(["uv", "lock", "--quiet"], cwd=root, check=True, capture_output=True)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", msg)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_release_that_breaks_a_dependent_is_refused_or_raises_its_bound(fake_workspace, capsys):
    root = fake_workspace
    good = "def main(argv=None):\n    import alpha  # noqa: F401\n    print('usage: gamma')\n    return 0\n"
    _fake_package(root, "gamma", good, deps=("alpha>=0.1,<0.2",))
    _commit_all(root, "gamma depends on alpha 0.1.x")
    head = _git(root, "rev-parse", "HEAD")
    # alpha 0.2.0 is outside gamma's `<0.2`: refused with one line naming gamma, nothing changes.
    assert release.main(["alpha", "minor", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and "gamma" in err[0] and "alpha>=0.1,<0.2" in err[0] and "--raise-dependents" in err[0]
    )
    assert _git(root, "rev-parse", "HEAD") == head and _git(root, "status", "--porcelain") == ""
    # --raise-dependents: gamma's bound is raised in the same release commit, with a changelog note, and gamma is
    # smoke-tested against the new alpha wheel.
    assert release.main(["alpha", "minor", "--raise-dependents", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "smoke test ok: gamma with alpha 0.2.0" in out
    gamma = root / "packages/gamma"
    assert '"alpha>=0.2,<0.3"' in (gamma / "pyproject.toml").read_text()
    assert (
        "- requires `alpha>=0.2,<0.3` (raised by the alpha 0.2.0 release)"
        in (gamma / "CHANGELOG.md").read_text()
    )
    changed = set(_git(root, "show", "--name-only", "--format=", "HEAD").split())
    assert {
        "packages/gamma/pyproject.toml",
        "packages/gamma/CHANGELOG.md",
        "packages/alpha/pyproject.toml",
    } <= changed
    assert _git(root, "status", "--porcelain") == ""
    # A patch inside the bound touches no dependent.
    (root / "packages/alpha/CHANGELOG.md").write_text(
        (root / "packages/alpha/CHANGELOG.md")
        .read_text()
        .replace("## Unreleased\n", "## Unreleased\n- a fix\n")
    )
    _commit_all(root, "a fix")
    assert release.main(["alpha", "patch", "--root", str(root)]) == 0
    changed = set(_git(root, "show", "--name-only", "--format=", "HEAD").split())
    assert not any(p.startswith("packages/gamma") for p in changed)


def _user_files_in_dist(root: Path) -> dict[str, bytes]:
    """Files a user (or an earlier release) left in dist/: they must survive any release."""
    (root / "dist/beta").mkdir(parents=True)
    (root / "dist/beta/beta-0.0.9-py3-none-any.whl").write_bytes(b"an earlier release")
    (root / "dist/beta/NOTES.txt").write_text("mine")
    (root / "dist/README").write_text("also mine")
    return _files(root / "dist")


def test_release_failing_smoke_test_restores_everything(fake_workspace, capsys):
    root = fake_workspace
    before = _user_files_in_dist(root)
    head = _git(root, "rev-parse", "HEAD")
    assert release.main(["beta", "patch", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "command failed" in err and "release aborted: files restored" in err and "Traceback" not in err
    assert _git(root, "status", "--porcelain") == "", "files restored after a failed smoke test"
    assert _git(root, "rev-parse", "HEAD") == head
    assert _git(root, "tag", "--list") == ""
    assert _files(root / "dist") == before, (
        "only this run's build is removed; earlier artifacts and other files stay"
    )
    assert not any(p.name.startswith(".release-staging") for p in (root / "dist/beta").iterdir())


def test_release_interrupted_by_ctrl_c_restores_and_says_one_line(fake_workspace, capsys, monkeypatch):
    root = fake_workspace
    (root / "dist/alpha").mkdir(parents=True)
    (root / "dist/alpha/alpha-0.0.1-py3-none-any.whl").write_bytes(b"old")
    before = _files(root / "dist")
    head = _git(root, "rev-parse", "HEAD")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(release, "smoke_test", interrupted)  # Ctrl-C after the build, during the smoke test
    assert release.main(["alpha", "minor", "--root", str(root)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["release interrupted (Ctrl-C): files restored, nothing committed"]
    assert _git(root, "status", "--porcelain") == "" and _git(root, "rev-parse", "HEAD") == head
    assert _files(root / "dist") == before
    assert sorted(p.name for p in (root / "dist/alpha").iterdir()) == ["alpha-0.0.1-py3-none-any.whl"]


def test_release_interrupted_before_dist_exists_leaves_no_dist(fake_workspace, monkeypatch, capsys):
    root = fake_workspace

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(release, "build", interrupted)  # Ctrl-C during the build
    assert release.main(["alpha", "patch", "--root", str(root)]) == 130
    assert capsys.readouterr().err.count("\n") == 1
    assert not (root / "dist").exists(), "the folders this run created are removed again"
    assert _git(root, "status", "--porcelain") == ""


def test_release_never_overwrites_an_existing_artifact(fake_workspace, capsys):
    root = fake_workspace
    (root / "dist/alpha").mkdir(parents=True)
    (root / "dist/alpha/alpha-0.1.1.tar.gz").write_bytes(b"someone's build")
    assert release.main(["alpha", "patch", "--root", str(root)]) == 2
    assert "already holds alpha-0.1.1.tar.gz" in capsys.readouterr().err
    assert (root / "dist/alpha/alpha-0.1.1.tar.gz").read_bytes() == b"someone's build"
    assert _git(root, "status", "--porcelain") == ""
