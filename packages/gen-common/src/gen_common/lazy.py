"""Public names imported on first use (PEP 562), so that a package's console script prints ``--help`` without
importing torch. One helper instead of a ``__getattr__``/``__dir__`` pair in every package's ``__init__``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose public ``names`` map to the module defining each one
    (``"presets"`` or ``"pkg.presets"``). Use in the package's ``__init__``::

        __getattr__, __dir__ = lazy_exports(__name__, {"Preset": "presets", "train": "training"})

    A name is imported when first read and then cached in the package's namespace.
    """

    def module_of(name: str) -> str:
        mod = names[name]
        return mod if mod == package or mod.startswith(package + ".") else f"{package}.{mod}"

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_of(name)), name)
        vars(sys.modules[package])[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
