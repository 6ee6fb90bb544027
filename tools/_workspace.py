"""Workspace facts and the wheel smoke test shared by tools/release.py and integration_tests/.

The smoke test proves `pip install <dist>` works alone: it builds the package's wheel (and the wheels of the
workspace packages it depends on), installs them into a fresh virtual environment together with exactly the
locked versions of their declared third-party dependencies (uv's cache makes torch a hardlink, not a download),
imports the package and runs its console script's --help.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Member:
    dist: str
    path: Path
    version: str
    import_name: str
    dependencies: tuple[str, ...]
    scripts: tuple[str, ...]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(req: str) -> str:
    return _norm(re.split(r"[\s\[<>=!~;]", req.strip(), maxsplit=1)[0])


def members(root: Path = ROOT) -> dict[str, Member]:
    out = {}
    for pyproject in sorted((root / "packages").glob("*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        proj = data["project"]
        wheel_pkgs = (
            data.get("tool", {})
            .get("hatch", {})
            .get("build", {})
            .get("targets", {})
            .get("wheel", {})
            .get("packages", [])
        )
        import_name = Path(wheel_pkgs[0]).name if wheel_pkgs else proj["name"].replace("-", "_")
        out[_norm(proj["name"])] = Member(
            dist=proj["name"],
            path=pyproject.parent,
            version=proj["version"],
            import_name=import_name,
            dependencies=tuple(proj.get("dependencies", [])),
            scripts=tuple(proj.get("scripts", {})),
        )
    return out


def workspace_closure(dist: str, all_members: dict[str, Member] | None = None) -> list[str]:
    """``dist`` and the workspace packages it depends on, transitively (dependencies first)."""
    ms = all_members or members()
    order: list[str] = []

    def visit(name: str) -> None:
        for req in ms[name].dependencies:
            dep = _req_name(req)
            if dep in ms and dep not in order:
                visit(dep)
        if name not in order:
            order.append(name)

    visit(_norm(dist))
    return order


def run(cmd: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


def build(dist: str, out_dir: Path, root: Path = ROOT) -> tuple[Path, Path]:
    """Build the sdist and wheel of one member; returns (wheel, sdist)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run(["uv", "build", "--package", dist, "--out-dir", str(out_dir)], cwd=root)
    m = members(root)[_norm(dist)]
    stem = m.dist.replace("-", "_")
    wheels = sorted(out_dir.glob(f"{stem}-{m.version}-*.whl"))
    sdists = sorted(out_dir.glob(f"{stem}-{m.version}.tar.gz"))
    if not wheels or not sdists:
        raise RuntimeError(f"uv build produced no wheel/sdist for {dist} {m.version} in {out_dir}")
    return wheels[-1], sdists[-1]


def smoke_test(
    dist: str, workdir: Path, wheel: Path | None = None, root: Path = ROOT, pip: bool = False
) -> dict[str, object]:
    """Install ``dist`` alone into a fresh venv under ``workdir`` and exercise it. Returns what was checked.

    Fails when the import's ``__version__`` (if it has one) differs from the version in its pyproject.toml.
    ``pip=True`` installs as a user would: a stdlib ``venv`` with its own pip; the locked third-party dependencies
    go in first (uv, from its cache), then plain ``pip install --no-index --find-links WHEELS <dist>`` resolves the
    workspace packages from our wheels alone (no index can supply a same-named stranger) and checks that every
    declared dependency is satisfied. The result then holds ``pip show`` of each workspace package installed.
    """
    ms = members(root)
    closure = workspace_closure(dist, ms)
    wheels = []
    for name in closure:
        if name == _norm(dist) and wheel is not None:
            wheels.append(wheel)
        else:
            wheels.append(build(ms[name].dist, workdir / "wheels", root)[0])
    reqs = run(
        [
            "uv",
            "export",
            "--package",
            ms[_norm(dist)].dist,
            "--no-hashes",
            "--no-dev",
            "--no-emit-workspace",
            "--frozen",
            "--no-header",
            "--no-annotate",
        ],
        cwd=root,
    )
    (workdir / "requirements.txt").write_text(reqs, encoding="utf-8")
    venv = workdir / "venv"
    if pip:
        run([sys.executable, "-m", "venv", str(venv)])  # ensurepip: the pip a user gets, no download
    else:
        run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)])
    py = venv / "bin" / "python"
    run(
        [
            "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            str(py),
            "-r",
            str(workdir / "requirements.txt"),
            *([] if pip else map(str, wheels)),
        ]
    )
    shown: dict[str, str] = {}
    if pip:
        links = workdir / "find-links"
        links.mkdir(exist_ok=True)
        for w in wheels:
            shutil.copy2(w, links / w.name)
        pip_env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
        pip_env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        run(
            [
                str(py),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-index",
                "--find-links",
                str(links),
                ms[_norm(dist)].dist,
            ],
            cwd=workdir,
            env=pip_env,
        )
        for name in closure:
            shown[name] = run(
                [str(py), "-m", "pip", "show", "--files", ms[name].dist], cwd=workdir, env=pip_env
            )
    member = ms[_norm(dist)]
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env.update(HF_HUB_OFFLINE="1", GEN_OFFLINE="1", MPLBACKEND="Agg")
    version = run(
        [str(py), "-c", f"import {member.import_name} as m; print(getattr(m, '__version__', ''))"],
        cwd=workdir,
        env=env,
    ).strip()
    if version and version != member.version:
        raise RuntimeError(
            f"{member.import_name}.__version__ is {version!r} but {member.dist}'s pyproject.toml says "
            f"{member.version!r}; keep them equal"
        )
    helps = {}
    for script in member.scripts:
        helps[script] = run([str(venv / "bin" / script), "--help"], cwd=workdir, env=env)
    installed = {
        _req_name(line.split("==")[0])
        for line in run(["uv", "pip", "freeze", "--python", str(py)]).splitlines()
        if line
    }
    return {
        "dist": member.dist,
        "version": version,
        "wheels": [w.name for w in wheels],
        "help": helps,
        "installed": installed,
        "pip_show": shown,
    }
