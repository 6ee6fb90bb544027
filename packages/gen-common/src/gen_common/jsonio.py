"""JSON-safe conversion of results: numpy and torch scalars/arrays, paths, dataclasses, non-finite floats."""

from __future__ import annotations

import dataclasses
import enum
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["to_jsonable"]


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` into plain JSON types. NaN and ±inf become ``None`` (strict JSON has no such numbers)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    # numpy and torch are looked up, not imported: an object of theirs exists only if they were imported already,
    # and printing a CLI result must not import torch.
    np = sys.modules.get("numpy")
    torch = sys.modules.get("torch")
    if np is not None:
        if isinstance(obj, (np.bool_,)):
            return bool(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return to_jsonable(float(obj))
        if isinstance(obj, np.ndarray):
            return to_jsonable(obj.tolist())
    if torch is not None:
        if isinstance(obj, torch.Tensor):
            obj = obj.detach().cpu()
            return to_jsonable(obj.item() if obj.ndim == 0 else obj.tolist())
        if isinstance(obj, (torch.device, torch.dtype)):
            return str(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON")
