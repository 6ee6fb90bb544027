"""Typed frozen-dataclass configs <-> JSON dictionaries.

Unknown keys are an error naming the closest known field (a typo in a config file should not be silently
ignored); lists read from JSON become tuples where the field is annotated as a tuple.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from gen_common.atomic import atomic_write_json

__all__ = ["ConfigError", "config_from_dict", "config_to_dict", "load_config", "read_json", "save_config"]

T = TypeVar("T")


class ConfigError(ValueError):
    """A config dictionary does not fit its dataclass."""


def config_to_dict(config: Any) -> dict[str, Any]:
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")
    return {f.name: _to_plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def _coerce(annotation: Any, value: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(arg, value)
            except (TypeError, ConfigError):
                continue
        return value
    if dataclasses.is_dataclass(annotation) and isinstance(value, dict):
        return config_from_dict(annotation, value)
    if (origin is tuple or annotation is tuple) and isinstance(value, list):
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        if args and len(args) == len(value):
            return tuple(_coerce(a, v) for a, v in zip(args, value))
        return tuple(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def config_from_dict(cls: type[T], data: dict[str, Any], *, strict: bool = True) -> T:
    """Build ``cls`` from ``data``. Keys starting with ``_`` are metadata and ignored."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    unknown = []
    for key, value in data.items():
        if key.startswith("_"):
            continue
        if key not in fields:
            unknown.append(key)
            continue
        kwargs[key] = _coerce(hints.get(key, Any), value)
    if unknown and strict:
        hints_txt = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hints_txt.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(hints_txt)}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"cannot build {cls.__name__} from {sorted(data)}: {exc}") from exc


def save_config(config: Any, path: str | Path, **metadata: Any) -> Path:
    """Write a config as JSON (atomically), with optional ``_``-prefixed metadata keys."""
    data = {f"_{k}": v for k, v in metadata.items()}
    data.update(config_to_dict(config))
    return atomic_write_json(path, data)


def read_json(path: str | Path, error: type[Exception] = ConfigError) -> dict[str, Any]:
    """Read a file holding one JSON object; a missing file is FileNotFoundError, bad content ``error``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"file not found: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{p} is not valid JSON ({exc}); the file may be truncated or corrupt") from exc
    if not isinstance(data, dict):
        raise error(f"{p} must hold a JSON object, not {type(data).__name__}")
    return data


def load_config(cls: type[T], path: str | Path, *, strict: bool = True) -> T:
    return config_from_dict(cls, read_json(path), strict=strict)
