"""Release one workspace package.

    uv run tools/release.py radd-diffusion minor  # bump, changelog, build, smoke-test, commit, tag radd-diffusion-v0.2.0
    uv run tools/release.py gen-common patch --dry-run   # print the plan, change nothing

Steps: bump the package's own version (major/minor/patch) in its pyproject.toml and in its ``__version__``; move its
CHANGELOG's "Unreleased" notes under the new
version with today's date; refresh uv.lock; build its wheel and sdist into dist/<dist>/; install the wheel in a
clean virtual environment with only its declared dependencies and run its console script; commit and create the
git tag ``<dist>-v<version>``. Each package carries its own version: no other package's files are touched.
Publishing (``uv publish dist/<dist>/*``) is left to the maintainer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _workspace import ROOT, _req_name, build, members, run, smoke_test

PARTS = ("major", "minor", "patch")


def bump(version: str, part: str) -> str:
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", version)
    if not m:
        raise SystemExit(f"error: version {version!r} is not MAJOR.MINOR.PATCH")
    major, minor, patch = map(int, m.groups())
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def split_changelog(text: str) -> tuple[str, str, str]:
    """(before the Unreleased heading incl. it, the Unreleased notes, the rest)."""
    m = re.search(r"^## Unreleased[^\n]*\n", text, flags=re.M)
    if not m:
        raise SystemExit("error: CHANGELOG.md has no '## Unreleased' section")
    nxt = re.search(r"^## ", text[m.end() :], flags=re.M)
    end = m.end() + (nxt.start() if nxt else len(text) - m.end())
    return text[: m.end()], text[m.end() : end].strip("\n"), text[end:]


def set_version(pyproject: str, new: str) -> str:
    head, sep, tail = pyproject.partition("[project]")
    if not sep:
        raise SystemExit("error: pyproject.toml has no [project] table")
    tail, n = re.subn(r'^version\s*=\s*"[^"]*"', f'version = "{new}"', tail, count=1, flags=re.M)
    if n != 1:
        raise SystemExit("error: no static version in [project]")
    return head + sep + tail


_VERSION_LINE = re.compile(r'^__version__\s*=\s*"([^"]*)"', flags=re.M)


def set_dunder_version(source: str, new: str) -> str:
    """Rewrite the literal ``__version__ = "..."`` of an ``__init__.py`` (exactly one must exist)."""
    out, n = _VERSION_LINE.subn(f'__version__ = "{new}"', source, count=1)
    if n != 1:
        raise SystemExit('error: no literal __version__ = "..." line in the package\'s __init__.py')
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", help="distribution name, e.g. radd or gen-common")
    ap.add_argument("part", choices=PARTS, help="which part of MAJOR.MINOR.PATCH to bump")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    ap.add_argument("--date", default=dt.date.today().isoformat(), help="release date for the changelog")
    ap.add_argument("--no-tag", action="store_true", help="commit but do not create the git tag")
    # The workspace to release from; only the tests point it elsewhere (a throwaway copy).
    ap.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    root = args.root.resolve()

    ms = members(root)
    key = re.sub(r"[-_.]+", "-", args.package).lower()
    if key not in ms:
        raise SystemExit(
            f"error: unknown package {args.package!r}; members: {', '.join(m.dist for m in ms.values())}"
        )
    m = ms[key]
    new = bump(m.version, args.part)
    tag = f"{m.dist}-v{new}"
    changelog_path = m.path / "CHANGELOG.md"
    pyproject_path = m.path / "pyproject.toml"
    init_path = m.path / "src" / m.import_name / "__init__.py"
    has_dunder = (
        init_path.is_file() and _VERSION_LINE.search(init_path.read_text(encoding="utf-8")) is not None
    )
    version_files = [pyproject_path, *([init_path] if has_dunder else [])]
    head, notes, rest = split_changelog(changelog_path.read_text(encoding="utf-8"))
    rel = lambda p: p.relative_to(root)  # noqa: E731
    plan = [
        f"package:   {m.dist} ({rel(m.path)})",
        f"version:   {m.version} -> {new}",
        f"changelog: move {len(notes.splitlines())} line(s) of 'Unreleased' notes under '## {new} - {args.date}'",
        f"files:     {', '.join(str(rel(p)) for p in [*version_files, changelog_path])}, uv.lock",
        f"build:     uv build --package {m.dist} --out-dir dist/{m.dist}",
        "smoke:     fresh venv with only its declared dependencies; import; console script --help",
        f"git:       commit 'Release {m.dist} {new}'" + ("" if args.no_tag else f" and tag {tag}"),
    ]
    # Dependents are not re-pinned automatically: most releases keep the API they use, and a new bound belongs in
    # a release of the dependent, with its own changelog line.
    dependents = sorted(
        d.dist for k, d in ms.items() if k != key and any(_req_name(r) == key for r in d.dependencies)
    )
    if dependents:
        plan.append(
            f"note:      {', '.join(dependents)} depend{'s' if len(dependents) == 1 else ''} on {m.dist}; if {new} changes an API they use, raise their "
            f"requirement to '{m.dist}>={new}' and release them too"
        )
    problems = []
    if not notes.strip():
        problems.append("the 'Unreleased' section is empty: nothing to release")
    if run(["git", "tag", "--list", tag], cwd=root).strip():
        problems.append(f"tag {tag} already exists")
    dirty = run(["git", "status", "--porcelain"], cwd=root).strip()
    if dirty and not args.dry_run:
        problems.append("the working tree has uncommitted changes; commit or stash them first")
    print("Release plan" + (" (dry run: nothing will change)" if args.dry_run else "") + ":")
    print("\n".join("  " + line for line in plan))
    if problems:
        print("\n".join("problem: " + p for p in problems), file=sys.stderr)
        return 2
    if args.dry_run:
        return 0

    lock_path = root / "uv.lock"
    originals = {p: p.read_text(encoding="utf-8") for p in (*version_files, changelog_path, lock_path)}
    try:
        pyproject_path.write_text(set_version(originals[pyproject_path], new), encoding="utf-8")
        if has_dunder:
            init_path.write_text(set_dunder_version(originals[init_path], new), encoding="utf-8")
        changelog_path.write_text(
            f"{head}\n## {new} - {args.date}\n{notes}\n\n{rest.lstrip(chr(10))}", encoding="utf-8"
        )
        run(["uv", "lock"], cwd=root)
        out = root / "dist" / m.dist
        wheel, sdist = build(m.dist, out, root)
        print(f"built {wheel.name} and {sdist.name}")
        with tempfile.TemporaryDirectory(prefix=f"release-{m.dist}-") as tmp:
            res = smoke_test(m.dist, Path(tmp), wheel=wheel, root=root)
        if has_dunder and res["version"] != new:
            raise RuntimeError(f"the built wheel reports version {res['version']!r}, expected {new!r}")
        print(
            f"smoke test ok: import {m.import_name} -> {res['version']}; scripts {', '.join(res['help'])} --help ok"
        )
    except BaseException:
        for p, text in originals.items():
            p.write_text(text, encoding="utf-8")
        shutil.rmtree(root / "dist" / m.dist, ignore_errors=True)
        print("release aborted; files restored", file=sys.stderr)
        raise
    run(["git", "add", *map(str, version_files), str(changelog_path), str(lock_path)], cwd=root)
    run(["git", "commit", "-m", f"Release {m.dist} {new}"], cwd=root)
    if not args.no_tag:
        subprocess.run(["git", "tag", "-a", tag, "-m", f"{m.dist} {new}"], cwd=root, check=True)
    print(
        f"released {m.dist} {new}"
        + ("" if args.no_tag else f" (tag {tag})")
        + f"; publish with: uv publish dist/{m.dist}/*"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
