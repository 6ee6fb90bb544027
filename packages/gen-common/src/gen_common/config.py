"""Typed frozen-dataclass configs <-> JSON dictionaries.

Unknown keys are an error naming the closest known field (a typo in a config file should not be silently
ignored); lists read from JSON become tuples where the field is annotated as a tuple.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from gen_common.atomic import atomic_write_json

__all__ = [
    "ConfigError",
    "TrainConfig",
    "arg",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "read_json",
    "save_config",
    "validate",
]

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


# --- Declared fields: one declaration gives the CLI flag, its help, and the value checks -------------------------

_META = "gen_common"


def arg(
    default: Any = dataclasses.MISSING,
    *,
    help: str = "",
    min: float | None = None,
    max: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    finite: bool = True,
    positional: bool = False,
    flag: str | None = None,
    metavar: str | None = None,
    choices: tuple[Any, ...] | None = None,
    cli: bool = True,
    repeat: bool = False,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field that knows its command-line flag and its checks.

    ``min``/``max`` are inclusive bounds, ``gt``/``lt`` strict ones (``min=1`` for a count, ``gt=0`` for a rate).
    Every float is checked finite unless ``finite=False``. ``positional=True`` makes a positional argument;
    ``flag`` overrides the flag name (default ``--field-name``); ``cli=False`` keeps the field off the command line;
    ``repeat=True`` makes a tuple field a repeatable flag (``--source A --source B``) instead of one flag with
    several values.
    ``validate(config)`` (called by every command, and by a config's ``__post_init__`` when it wants library callers
    checked too) enforces the checks with a one-line ``ValueError``.
    """
    meta = {
        "help": help,
        "min": min,
        "max": max,
        "gt": gt,
        "lt": lt,
        "finite": finite,
        "positional": positional,
        "flag": flag,
        "metavar": metavar,
        "choices": choices,
        "cli": cli,
        "repeat": repeat,
    }
    kwargs: dict[str, Any] = {"metadata": {_META: meta}}
    if default_factory is not dataclasses.MISSING:
        kwargs["default_factory"] = default_factory
    elif default is not dataclasses.MISSING:
        if isinstance(default, (list, dict, set)):
            raise TypeError("use a tuple (or default_factory) for a sequence default")
        kwargs["default"] = default
    return dataclasses.field(**kwargs)


def field_meta(f: dataclasses.Field) -> dict[str, Any]:
    """The ``arg`` metadata of a field (empty defaults for a plain field)."""
    meta = f.metadata.get(_META)
    if meta is None:
        return {
            "help": "",
            "min": None,
            "max": None,
            "gt": None,
            "lt": None,
            "finite": True,
            "positional": False,
            "flag": None,
            "metavar": None,
            "choices": None,
            "cli": True,
        }
    return meta


def flag_name(f: dataclasses.Field) -> str:
    meta = field_meta(f)
    if meta["positional"]:
        return f.name.upper()
    return meta["flag"] or "--" + f.name.replace("_", "-")


def _check_value(name: str, meta: dict[str, Any], value: Any) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, (tuple, list)):
        for v in value:
            _check_value(name, meta, v)
        return
    if not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and meta["finite"] and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    bounds = [
        (meta["min"], lambda v, b: v >= b, "at least"),
        (meta["max"], lambda v, b: v <= b, "at most"),
        (meta["gt"], lambda v, b: v > b, "greater than"),
        (meta["lt"], lambda v, b: v < b, "less than"),
    ]
    for bound, ok, words in bounds:
        if bound is not None and not (value == value and ok(value, bound)):
            raise ValueError(f"{name} must be {words} {bound:g}, got {value:g}")


def validate(config: Any) -> Any:
    """Check every declared field of ``config`` (and of nested configs); return it. One-line ``ValueError``s."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate(value)
            continue
        meta = field_meta(f)
        _check_value(flag_name(f), meta, value)
        allowed = meta["choices"] or _literal_choices(hints.get(f.name))
        if allowed and value is not None and value not in allowed:
            raise ValueError(f"{flag_name(f)} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    return config


def _literal_choices(annotation: Any) -> tuple[Any, ...] | None:
    if annotation is None:
        return None
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for a in typing.get_args(annotation):
            c = _literal_choices(a)
            if c:
                return c
    return None


# --- The one training configuration of the workspace --------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the shared training loop (`gen_common.training.train`); every package's train command embeds it."""

    steps: int = arg(1000, help="optimizer steps", min=1)
    lr: float = arg(3e-4, help="peak learning rate", gt=0)
    weight_decay: float = arg(0.0, help="AdamW weight decay", min=0)
    betas: tuple[float, float] = arg((0.9, 0.999), help="AdamW betas", min=0, lt=1)
    eps: float = arg(1e-8, help="AdamW epsilon", gt=0, cli=False)
    warmup_steps: int = arg(0, help="linear warmup steps", min=0)
    schedule: Literal["constant", "cosine"] = arg("constant", help="learning-rate schedule after warmup")
    min_lr_ratio: float = arg(0.0, help="cosine decays to lr * min_lr_ratio", min=0, max=1)
    grad_clip: float | None = arg(1.0, help="gradient-norm clip", gt=0)
    ema_decay: float | None = arg(None, help="EMA decay, e.g. 0.999 (default: no EMA)", gt=0, lt=1)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = arg(
        "auto", help="auto: bf16 autocast on CUDA, none elsewhere"
    )
    log_every: int = arg(50, help="steps between logged losses", min=1)
    checkpoint_every: int = arg(0, help="steps between checkpoints (0: only at the end)", min=0)
    keep_checkpoints: int = arg(1, help="checkpoints kept in OUT/checkpoints", min=1)
    seed: int = arg(0, help="seed of the loop's randomness", cli=False)

    def __post_init__(self) -> None:
        validate(self)
