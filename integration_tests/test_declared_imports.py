"""Every import in a package's source and tests is covered by what that package declares.

The wheel-isolation test proves the console script runs with only the declared dependencies; this static check
extends that to every module and test file (including optional paths behind extras), so that
`uv run --package NAME pytest packages/NAME` cannot pass only because a sibling or the dev group brought a module in.
"""

import ast
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires

import pytest
from _workspace import _norm, _req_name, members, workspace_closure

MEMBERS = members()
IMPORT_NAMES = {m.import_name: name for name, m in MEMBERS.items()}
MODULE_TO_DISTS = {mod: {_norm(d) for d in dists} for mod, dists in packages_distributions().items()}


def _declared(dist: str, seen: set[str], with_extras: bool) -> set[str]:
    """``dist`` and what it requires, transitively (its own extras only at the top level)."""
    if dist in seen:
        return seen
    seen.add(dist)
    try:
        reqs = requires(dist) or []
    except PackageNotFoundError:
        return seen
    for req in reqs:
        if "extra ==" in req and not with_extras:
            continue
        _declared(_req_name(req), seen, with_extras=False)
    return seen


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("dist", sorted(MEMBERS))
def test_imports_are_declared(dist):
    m = MEMBERS[dist]
    pyproject = tomllib.loads((m.path / "pyproject.toml").read_text(encoding="utf-8"))
    allowed = _declared(dist, set(), with_extras=True) | {"pytest"}
    allowed |= {
        _req_name(r) for r in pyproject.get("dependency-groups", {}).get("dev", []) if isinstance(r, str)
    }
    closure = set(workspace_closure(dist, MEMBERS))
    problems = []
    for folder in ("src", "tests"):
        for path in sorted((m.path / folder).rglob("*.py")):
            for top in set(_imports(path)):
                if top in sys.stdlib_module_names or top == m.import_name:
                    continue
                if top in IMPORT_NAMES:
                    ok = IMPORT_NAMES[top] in closure
                else:
                    ok = bool(MODULE_TO_DISTS.get(top, {_norm(top)}) & allowed)
                if not ok:
                    problems.append(f"{path.relative_to(m.path)} imports {top}")
    assert not problems, f"{dist} imports what it does not declare: " + "; ".join(problems)
