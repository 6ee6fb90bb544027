import subprocess
import sys
import types

import pytest

from gen_common.lazy import lazy_exports


def test_lazy_exports_import_on_first_access_and_cache(monkeypatch):
    pkg = types.ModuleType("lazypkg")
    sub = types.ModuleType("lazypkg.sub")
    sub.value = 42
    sub.other = "x"
    monkeypatch.setitem(sys.modules, "lazypkg", pkg)
    monkeypatch.setitem(sys.modules, "lazypkg.sub", sub)
    pkg.__getattr__, pkg.__dir__ = lazy_exports("lazypkg", {"value": "sub", "other": "lazypkg.sub"})
    assert "value" not in vars(pkg)
    assert pkg.value == 42 and pkg.other == "x"  # relative and absolute submodule names
    assert vars(pkg)["value"] == 42  # cached: the next access does not go through __getattr__
    assert {"value", "other"} <= set(dir(pkg))
    with pytest.raises(AttributeError, match="module 'lazypkg' has no attribute 'missing'"):
        pkg.missing  # noqa: B018


def test_lazy_module_does_not_import_torch():
    code = "import sys, gen_common.lazy; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
