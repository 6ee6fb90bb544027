"""Command-line flags from config dataclasses: one flag per field (nested configs flattened into their own
group), types and choices from the annotations, and parsing straight back into the validated config."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from gen_common.config import field_meta, flag_name, validate

if typing.TYPE_CHECKING:
    from gen_common.cli import Command

__all__ = ["COMMON_FLAGS", "add_common_args", "build_parser", "parse_config"]

COMMON_FLAGS = ("device", "seed", "json", "out", "overwrite")


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(annotation)):
            return args[0], True
    return annotation, False


def _flat_fields(
    cls: type, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], dataclasses.Field, Any]]:
    """(path, field, annotation) for every leaf field, nested dataclass fields flattened."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        ann = hints.get(f.name, str)
        inner, _ = _unwrap_optional(ann)
        if dataclasses.is_dataclass(inner) and isinstance(inner, type):
            out.extend(_flat_fields(inner, (*prefix, f.name)))
        else:
            out.append(((*prefix, f.name), f, ann))
    return out


def _converter(tp: Any, name: str, optional: bool = False) -> Callable[[str], Any]:
    def conv(text: str) -> Any:
        if optional and text.lower() == "none":
            return None
        try:
            if tp is bool:
                low = text.lower()
                if low in {"1", "true", "yes", "on"}:
                    return True
                if low in {"0", "false", "no", "off"}:
                    return False
                raise ValueError
            return tp(text)
        except (TypeError, ValueError):
            kind = getattr(tp, "__name__", str(tp))
            raise argparse.ArgumentTypeError(
                f"{name} expects {'an' if kind[0] in 'aeiou' else 'a'} {kind}, got {text!r}"
            ) from None

    conv.__name__ = getattr(tp, "__name__", "value")
    return conv


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _add_field(
    parser: argparse.ArgumentParser, dest: str, f: dataclasses.Field, ann: Any, default: Any
) -> None:
    meta = field_meta(f)
    tp, optional = _unwrap_optional(ann)
    name = flag_name(f)
    help_text = meta["help"] or ""
    kwargs: dict[str, Any] = {"dest": dest}
    required = default is dataclasses.MISSING
    choices = meta["choices"]
    origin = typing.get_origin(tp)
    nargs = None
    if origin is Literal:
        choices = typing.get_args(tp)
        tp = type(choices[0])
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        enum_tp = tp
        choices = tuple(m.value for m in enum_tp)
        tp = type(choices[0])
    elif origin is tuple or tp is tuple:
        targs = typing.get_args(tp)
        elem = targs[0] if targs else str
        nargs = "+" if (not targs or (len(targs) == 2 and targs[1] is Ellipsis)) else len(targs)
        if nargs == "+" and not required and not default:
            nargs = "*"
        tp = elem
    if tp is Any:
        tp = str
    if tp is bool and nargs is None and not meta["positional"]:
        kwargs["action"] = argparse.BooleanOptionalAction
        kwargs["default"] = False if required else default
        parser.add_argument(
            name, help=help_text + (" (default: %(default)s)" if not required else ""), **kwargs
        )
        return
    kwargs["type"] = _converter(tp, name, optional)
    if nargs is not None and meta.get("repeat"):
        kwargs["action"] = "append"  # one value per occurrence; the parsed list becomes the tuple
        nargs = None
    if nargs is not None:
        kwargs["nargs"] = nargs
    if choices:
        kwargs["choices"] = list(choices)
    if meta["metavar"]:
        kwargs["metavar"] = meta["metavar"]
    elif choices:
        kwargs["metavar"] = "{" + ",".join(map(str, choices)) + "}"
    elif not meta["positional"]:
        kwargs["metavar"] = dest.rsplit("__", 1)[-1].upper()
    if meta["positional"]:
        del kwargs["dest"]
        if not required:
            kwargs["nargs"] = "?" if nargs is None else "*"
            kwargs["default"] = default
        parser.add_argument(dest, help=help_text, **kwargs)
        return
    if required:
        kwargs["required"] = True
    else:
        kwargs["default"] = default
        if isinstance(default, enum.Enum):
            kwargs["default"] = default = default.value
        shown = "none" if default is None else ("" if default == () else "%(default)s")
        if optional:
            help_text += " ('none' to unset)" if default is not None else ""
        if shown and "default" not in help_text:
            help_text = f"{help_text} (default: {shown})" if help_text else f"default: {shown}"
    if kwargs.get("action") == "append" and not required:
        kwargs["default"] = None  # argparse would append to a default list; None means "the field's default"
    parser.add_argument(name, help=help_text, **kwargs)


def _config_leaves(cls: type) -> list[tuple[tuple[str, ...], dataclasses.Field, Any, Any]]:
    """Leaves with their defaults (nested defaults come from the parent's default instance)."""
    leaves = []

    def walk(c: type, prefix: tuple[str, ...], parent_default: Any) -> None:
        hints = typing.get_type_hints(c)
        for f in dataclasses.fields(c):
            ann = hints.get(f.name, str)
            inner, _ = _unwrap_optional(ann)
            if parent_default is not dataclasses.MISSING and parent_default is not None:
                default = getattr(parent_default, f.name)
            else:
                default = _default_of(f)
            if dataclasses.is_dataclass(inner) and isinstance(inner, type):
                walk(inner, (*prefix, f.name), default if default is not dataclasses.MISSING else inner())
            else:
                leaves.append(((*prefix, f.name), f, ann, default))

    walk(cls, (), dataclasses.MISSING)
    return leaves


def add_common_args(
    parser: argparse.ArgumentParser,
    *,
    out_default: str | None = None,
    seed_default: int = 0,
    overwrite: bool = False,
) -> None:
    """``--device``, ``--seed``, ``--json``, ``--out`` (and ``--overwrite``): the flags every subcommand shares."""
    g = parser.add_argument_group("common options")
    g.add_argument(
        "--device", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:N or mps"
    )
    g.add_argument("--seed", type=int, default=seed_default, help="random seed (default: %(default)s)")
    g.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the results on stdout; no progress bars",
    )
    g.add_argument(
        "--out",
        default=out_default,
        help="output folder for files this command writes (default: %(default)s)",
    )
    if overwrite:
        g.add_argument(
            "--overwrite",
            action="store_true",
            help="replace the files this command writes if --out already holds them (nothing else is touched)",
        )


def _add_command(sub: Any, cmd: Command) -> None:
    summary = cmd.summary()
    doc = inspect.cleandoc(cmd.config.__doc__ or "")  # the docstring's indentation is not part of the text
    if doc.startswith(cmd.config.__name__ + "("):
        doc = summary
    p = sub.add_parser(
        cmd.name,
        help=summary,
        description=doc or summary,
        aliases=list(cmd.aliases),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    seen: set[str] = set()
    groups: dict[tuple[str, ...], Any] = {}
    for path, f, ann, default in _config_leaves(cmd.config):
        if path[-1] in COMMON_FLAGS or not field_meta(f)["cli"]:
            continue
        target = p
        if len(path) > 1:  # a nested config's flags get a group of their own in --help
            if path[:-1] not in groups:
                groups[path[:-1]] = p.add_argument_group(f"{'.'.join(path[:-1])} options")
            target = groups[path[:-1]]
        dest = "__".join(path)
        flag = flag_name(f)
        if flag in seen:
            raise TypeError(f"{cmd.config.__name__}: two fields give the flag {flag}")
        seen.add(flag)
        _add_field(target, dest, f, ann, default)
    add_common_args(p, out_default=cmd.out_default, overwrite=True)
    if cmd.writes:
        p.epilog = (
            "writes into --out: "
            + ", ".join(cmd.writes)
            + (" (resumes from its checkpoints there)" if cmd.resumable else "")
        )
    p.set_defaults(_command=cmd)


def build_parser(
    prog: str, commands: Sequence[Command], *, description: str = "", version: str | None = None
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if version:
        parser.add_argument("--version", action="version", version=f"{prog} {version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in commands:
        _add_command(sub, cmd)
    return parser


def parse_config(cls: type, ns: argparse.Namespace | Mapping[str, Any]) -> Any:
    """Build (and validate) a config from parsed arguments; common flags fill same-named fields."""
    values = vars(ns) if isinstance(ns, argparse.Namespace) else dict(ns)

    def build(c: type, prefix: tuple[str, ...]) -> Any:
        hints = typing.get_type_hints(c)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(c):
            inner, _ = _unwrap_optional(hints.get(f.name, str))
            path = (*prefix, f.name)
            if dataclasses.is_dataclass(inner) and isinstance(inner, type):
                kwargs[f.name] = build(inner, path)
                continue
            key = "__".join(path)
            if f.name in COMMON_FLAGS and f.name in values and f.name != "out":
                kwargs[f.name] = values[f.name]
            elif key in values:
                v = values[key]
                if v is None and field_meta(f).get("repeat"):
                    continue  # a repeatable flag never given: the field's default
                if isinstance(v, list):
                    v = tuple(v)
                tp, _ = _unwrap_optional(hints.get(f.name, str))
                if isinstance(tp, type) and issubclass(tp, enum.Enum) and v is not None:
                    v = tp(v)
                if isinstance(tp, type) and issubclass(tp, Path) and isinstance(v, str):
                    v = Path(v)
                kwargs[f.name] = v
        return c(**kwargs)

    return validate(build(cls, ()))
