"""Release one workspace package.

    uv run tools/release.py radd-diffusion minor  # bump, changelog, build, smoke-test, commit, tag radd-diffusion-v0.2.0
    uv run tools/release.py gen-common patch --dry-run   # print the plan, change nothing

Steps: bump the package's own version (major/minor/patch) in its pyproject.toml and in its ``__version__``; move its
CHANGELOG's "Unreleased" notes under the new
version with today's date; refresh uv.lock; build its wheel and sdist into dist/<dist>/; install the wheel in a
clean virtual environment with only its declared dependencies and run its console script; commit and create the
git tag ``<dist>-v<version>``. Each package carries its own version.

Workspace packages that depend on the one released carry compatible bounds (``gen-common>=0.1,<0.2``). A release
whose new version falls outside a dependent's bound (a 0.1 -> 0.2 bump) is refused with one line naming the
dependents, unless ``--raise-dependents`` is given: then their requirement becomes ``>=NEW_SERIES,<NEXT`` (e.g.
``gen-common>=0.2,<0.3``) in the same release commit, each gets an "Unreleased" changelog line (so its own next
release carries the new bound) and each is smoke-tested against the new wheel.

A failed or interrupted (Ctrl-C, exit code 130) release restores every file it changed and removes only what this
run built: artifacts are built into a staging folder and moved into dist/<dist>/ only after the smoke test
passes, so earlier releases' wheels and other files there are never touched, and an existing artifact with the
same name is refused rather than overwritten. Publishing (``uv publish dist/<dist>/*``) is left to the maintainer.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

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


def next_series(version: str) -> str:
    """The first version outside ``version``'s compatible series: 0.x breaks at every minor, x >= 1 at every major."""
    v = Version(version)
    return f"0.{v.minor + 1}" if v.major == 0 else f"{v.major + 1}"


def compatible_spec(version: str) -> str:
    """``>=SERIES,<NEXT`` for ``version``: ``0.2.0`` -> ``>=0.2,<0.3``; ``1.4.2`` -> ``>=1.4,<2``."""
    v = Version(version)
    return f">={v.major}.{v.minor},<{next_series(version)}"


def _requirement_strings(pyproject: dict) -> list[str]:
    proj = pyproject.get("project", {})
    out = list(proj.get("dependencies", []))
    for reqs in proj.get("optional-dependencies", {}).values():
        out.extend(reqs)
    return out


def broken_requirements(root: Path, dist_key: str, new: str) -> dict[Path, list[str]]:
    """Per dependent's pyproject.toml: its requirements on ``dist_key`` whose bound excludes version ``new``."""
    found: dict[Path, list[str]] = {}
    for name, member in members(root).items():
        if name == dist_key:
            continue
        path = member.path / "pyproject.toml"
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        bad = [
            r
            for r in _requirement_strings(data)
            if _req_name(r) == dist_key and not Requirement(r).specifier.contains(new, prereleases=True)
        ]
        if bad:
            found[path] = bad
    return found


def raise_requirement(req: str, new: str) -> str:
    """The same requirement (name, extras, marker) with the compatible bound of version ``new``."""
    r = Requirement(req)  # validates it
    head = re.match(r"\s*[A-Za-z0-9._-]+\s*(\[[^\]]*\])?", req).group(0).strip()  # name[extras] as written
    return f"{head}{compatible_spec(new)}" + (f"; {r.marker}" if r.marker else "")


def raise_bounds(pyproject_text: str, reqs: list[str], new: str) -> str:
    """Rewrite each quoted requirement string in ``reqs`` to the compatible bound of ``new`` (text edit, so
    comments and layout survive)."""
    for req in reqs:
        quoted = [f'"{req}"', f"'{req}'"]
        hit = next((q for q in quoted if q in pyproject_text), None)
        if hit is None:
            raise SystemExit(
                f"error: cannot find the requirement {req!r} written literally in a pyproject.toml"
            )
        pyproject_text = pyproject_text.replace(hit, f'"{raise_requirement(req, new)}"')
    return pyproject_text


def add_unreleased_note(changelog: str, note: str) -> str:
    """Append ``note`` to the "Unreleased" notes, creating that section above the first release when missing."""
    if not re.search(r"^## Unreleased", changelog, flags=re.M):
        m = re.search(r"^## ", changelog, flags=re.M)
        at = m.start() if m else len(changelog)
        return f"{changelog[:at].rstrip(chr(10))}\n\n## Unreleased\n- {note}\n\n{changelog[at:]}".lstrip("\n")
    head, notes, rest = split_changelog(changelog)
    body = f"{notes}\n- {note}" if notes else f"- {note}"
    return f"{head}{body}\n\n{rest.lstrip(chr(10))}"


@contextlib.contextmanager
def _no_interrupt() -> Iterator[None]:
    """Hold Ctrl-C while files are being restored: a second Ctrl-C must not leave a half-restored workspace."""
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to hold
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # _release has already restored the files; one line, no traceback, the shell's code for SIGINT.
        print("release interrupted (Ctrl-C): files restored, nothing committed", file=sys.stderr)
        return 130


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", help="distribution name, e.g. radd-diffusion or gen-common")
    ap.add_argument("part", choices=PARTS, help="which part of MAJOR.MINOR.PATCH to bump")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    ap.add_argument("--date", default=dt.date.today().isoformat(), help="release date for the changelog")
    ap.add_argument(
        "--raise-dependents",
        action="store_true",
        help="when the new version is outside a dependent's bound, raise that bound in the same release commit "
        "(default: refuse the release)",
    )
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
    dist_dir = root / "dist" / m.dist
    stem = m.dist.replace("-", "_")
    # Dependents whose bound on this package excludes the new version (e.g. `<0.2` against 0.2.0).
    broken = broken_requirements(root, key, new)
    by_path = {d.path / "pyproject.toml": d for d in ms.values()}
    broken_dists = sorted(by_path[path].dist for path in broken)
    raising = bool(broken) and args.raise_dependents
    dependent_files = [f for path in broken for f in (path, path.parent / "CHANGELOG.md")] if raising else []
    plan = [
        f"package:   {m.dist} ({rel(m.path)})",
        f"version:   {m.version} -> {new}",
        f"changelog: move {len(notes.splitlines())} line(s) of 'Unreleased' notes under '## {new} - {args.date}'",
        f"files:     {', '.join(str(rel(p)) for p in [*version_files, changelog_path, *dependent_files])}, uv.lock",
        f"build:     uv build --package {m.dist}, into dist/{m.dist}/ once the smoke test passes",
        "smoke:     fresh venv with only its declared dependencies; import; console script --help",
        f"git:       commit 'Release {m.dist} {new}'" + ("" if args.no_tag else f" and tag {tag}"),
    ]
    dependents = sorted(
        d.dist
        for k, d in ms.items()
        if k != key
        and any(
            _req_name(r) == key
            for r in _requirement_strings(tomllib.loads((d.path / "pyproject.toml").read_text()))
        )
    )
    if dependents:
        plan.append(f"dependents: {', '.join(dependents)} (bounds checked against {new})")
    if raising:
        plan.append(
            f"raise:     {', '.join(broken_dists)} -> '{m.dist}{compatible_spec(new)}', an 'Unreleased' note each, "
            "and each smoke-tested against the new wheel"
        )
    problems = []
    if not notes.strip():
        problems.append("the 'Unreleased' section is empty: nothing to release")
    if run(["git", "tag", "--list", tag], cwd=root).strip():
        problems.append(f"tag {tag} already exists")
    existing = sorted(
        p.name for pat in (f"{stem}-{new}-*.whl", f"{stem}-{new}.tar.gz") for p in dist_dir.glob(pat)
    )
    if existing:
        problems.append(
            f"dist/{m.dist}/ already holds {', '.join(existing)}; move them away (they are never overwritten)"
        )
    if broken and not args.raise_dependents:
        problems.append(
            f"{m.dist} {new} is outside the bound that {', '.join(broken_dists)} "
            f"declare{'s' if len(broken_dists) == 1 else ''} ("
            + "; ".join(f"{by_path[path].dist}: {', '.join(reqs)}" for path, reqs in broken.items())
            + f"); rerun with --raise-dependents to raise them to '{m.dist}{compatible_spec(new)}' in this release"
        )
    for f in dependent_files:
        if f.name == "CHANGELOG.md" and not f.is_file():
            problems.append(f"{rel(f)} is missing: the raised bound needs a changelog note")
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
    return _release(
        args, root, m, new, tag, version_files, changelog_path, (head, notes, rest), broken, dependent_files
    )


def _release(
    args, root, m, new, tag, version_files, changelog_path, changelog_parts, broken, dependent_files
) -> int:
    """Change, build, smoke-test, commit, tag; on any failure or Ctrl-C undo exactly what this run did."""
    head, notes, rest = changelog_parts
    pyproject_path, init_path = version_files[0], (version_files[1] if len(version_files) > 1 else None)
    lock_path = root / "uv.lock"
    originals = {
        p: p.read_text(encoding="utf-8")
        for p in (*version_files, changelog_path, lock_path, *dependent_files)
    }
    dist_dir = root / "dist" / m.dist
    created_dirs = [d for d in (root / "dist", dist_dir) if not d.exists()]
    placed: list[Path] = []  # artifacts this run moved into dist/<dist>/
    staging: Path | None = None
    staged_in_git = committed = False
    try:
        pyproject_path.write_text(set_version(originals[pyproject_path], new), encoding="utf-8")
        if init_path is not None:
            init_path.write_text(set_dunder_version(originals[init_path], new), encoding="utf-8")
        changelog_path.write_text(
            f"{head}\n## {new} - {args.date}\n{notes}\n\n{rest.lstrip(chr(10))}", encoding="utf-8"
        )
        for path, reqs in broken.items():
            if path in originals:  # only with --raise-dependents
                path.write_text(raise_bounds(originals[path], reqs, new), encoding="utf-8")
                log = path.parent / "CHANGELOG.md"
                log.write_text(
                    add_unreleased_note(
                        originals[log],
                        f"requires `{m.dist}{compatible_spec(new)}` (raised by the {m.dist} {new} release)",
                    ),
                    encoding="utf-8",
                )
        run(["uv", "lock"], cwd=root)
        dist_dir.mkdir(parents=True, exist_ok=True)
        # Build beside the final place (same file system) but apart from it: a failure removes only this folder.
        staging = Path(tempfile.mkdtemp(prefix=".release-staging-", dir=dist_dir))
        wheel, sdist = build(m.dist, staging, root)
        print(f"built {wheel.name} and {sdist.name}")
        with tempfile.TemporaryDirectory(prefix=f"release-{m.dist}-") as tmp:
            res = smoke_test(m.dist, Path(tmp), wheel=wheel, root=root)
        if init_path is not None and res["version"] != new:
            raise RuntimeError(f"the built wheel reports version {res['version']!r}, expected {new!r}")
        print(
            f"smoke test ok: import {m.import_name} -> {res['version']}; scripts {', '.join(res['help'])} --help ok"
        )
        for path in broken if dependent_files else {}:
            dep = _member_at(root, path)
            with tempfile.TemporaryDirectory(prefix=f"release-{dep.dist}-") as tmp:
                smoke_test(dep.dist, Path(tmp), root=root)
            print(f"smoke test ok: {dep.dist} with {m.dist} {new}")
        for art in (wheel, sdist):
            dest = dist_dir / art.name
            if dest.exists():  # appeared while we built: never overwrite
                raise RuntimeError(f"{dest} appeared during the release; not overwriting it")
            art.replace(dest)
            placed.append(dest)
        shutil.rmtree(staging)
        staging = None
        files = [*version_files, changelog_path, lock_path, *dependent_files]
        staged_in_git = True
        run(["git", "add", *map(str, files)], cwd=root)
        run(["git", "commit", "-m", f"Release {m.dist} {new}"], cwd=root)
        committed = True
    except BaseException as exc:
        with _no_interrupt():
            for p, text in originals.items():
                p.write_text(text, encoding="utf-8")
            if staged_in_git and not committed:
                subprocess.run(
                    ["git", "reset", "-q", "--", *map(str, originals)], cwd=root, capture_output=True
                )
            for p in placed:
                p.unlink(missing_ok=True)
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            for d in reversed(created_dirs):  # only folders this run created, and only if left empty
                with contextlib.suppress(OSError):
                    d.rmdir()
        if not isinstance(exc, Exception):  # Ctrl-C (main prints its one line) or SystemExit
            raise
        print(f"error: release failed: {exc}", file=sys.stderr)
        print("release aborted: files restored, this run's build removed, nothing committed", file=sys.stderr)
        return 1
    if not args.no_tag:
        try:
            run(["git", "tag", "-a", tag, "-m", f"{m.dist} {new}"], cwd=root)
        except (RuntimeError, KeyboardInterrupt):
            print(
                f"error: committed 'Release {m.dist} {new}' but could not tag it; run: git tag -a {tag}",
                file=sys.stderr,
            )
            return 1
    print(
        f"released {m.dist} {new}"
        + ("" if args.no_tag else f" (tag {tag})")
        + f"; publish with: uv publish dist/{m.dist}/*"
    )
    return 0


def _member_at(root: Path, pyproject: Path):
    return next(d for d in members(root).values() if d.path == pyproject.parent)


if __name__ == "__main__":
    sys.exit(main())
