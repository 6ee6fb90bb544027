"""PEP 562 lazy exports for a package's ``__init__``: names are imported from their submodule on first access, so
``import pkg`` and a console script's ``--help`` stay light (no torch). Standard library only.

    _EXPORTS = {"Pose": "poses", "psnr": "metrics"}  # name -> submodule (relative, or absolute "pkg.metrics")
    __all__ = sorted(_EXPORTS)
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a public name to the submodule defining it. A
    looked-up name is cached in the package's namespace; an unknown one raises the usual AttributeError."""
    targets = {
        name: mod if mod == package or mod.startswith(package + ".") else f"{package}.{mod}"
        for name, mod in exports.items()
    }

    def __getattr__(name: str) -> Any:
        module = targets.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(targets))

    return __getattr__, __dir__
