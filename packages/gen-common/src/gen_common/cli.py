"""Console scripts: one way to build a command, shared by every package.

A command is declared by its frozen config dataclass and run by a library function::

    # runs.py: no argparse, no printing, no sys.exit; torch imported inside functions (``--help`` stays fast)
    @dataclass(frozen=True)
    class SampleRun:
        '''Sample sequences from a trained model.'''            # the subcommand's help
        model: str = arg(help="model folder or hub id")        # no default: a required flag
        steps: int = arg(128, help="sampling steps", min=1)     # checks come from the declaration
        temperature: float = arg(1.0, help="0 = greedy", min=0)  # floats are always checked finite
        method: Literal["analytic", "euler"] = arg("analytic")  # choices from Literal (or Enum)
        cache: bool = arg(True, help="skip unchanged sequences")  # --cache / --no-cache

    def sample(run: SampleRun, ctx: RunContext | None = None) -> SampleReport:
        ctx = RunContext.of(ctx)
        device = ctx.torch_device()
        ...
        atomic_write_text(ctx.output("samples.txt"), text)     # the output policy applies to library calls too

    # cli.py: a table
    COMMANDS = [
        Command("sample", "radd.runs:sample", SampleRun, writes=("samples.txt",), human=show_samples),
        Command("train", "radd.runs:train", TrainRun, writes=("model.safetensors", "config.json"),
                out_default="runs/radd-tiny", resumable=True),
    ]
    main = main_for("radd", COMMANDS, description=DESCRIPTION)

What the shared layer owns, once for every package:

- flags from fields: ``--field-name`` (``arg(flag=...)`` overrides it), type from the annotation (int, float, str,
  Path, bool as ``--x/--no-x``, ``X | None``, ``Literal``/``Enum`` choices, ``tuple[X, ...]`` as several values),
  default and help; a nested dataclass field (e.g. ``train: TrainConfig``) contributes its own fields' flags;
- checks: ``validate`` rejects NaN, infinities and out-of-range values (``min=1`` for counts) with one line;
- common flags on every command: ``--device --seed --json --out --overwrite``. A config field named ``seed`` or
  ``device`` (here or nested) is filled from the common flag instead of getting a flag of its own;
- the output folder: a command lists the files it ``writes`` (glob patterns). If ``--out`` already holds one of
  them the command refuses unless ``--overwrite``; ``--overwrite`` replaces only those files (atomically); nothing
  else is ever deleted. A ``resumable`` command keeps its resume state (e.g. ``checkpoints/``) out of ``writes`` and
  resumes from it. Written files follow the user's umask;
- output: the report (a dataclass or mapping) printed as ``key: value`` lines or by ``human(report)``, one JSON
  object with ``--json`` (progress bars off); expected failures print one line ``PROG: error: ...`` and exit 2
  (``GEN_DEBUG=1`` shows the traceback); Ctrl-C prints one line and exits 130;
- no torch import before ``--help`` is printed (the function is imported when the command runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import importlib
import json
import os
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar

from gen_common.config import ConfigError, arg, field_meta, flag_name, validate

__all__ = [
    "USER_ERRORS",
    "Command",
    "RunContext",
    "add_common_args",
    "arg",
    "build_parser",
    "check_outputs",
    "emit",
    "format_table",
    "main_for",
    "parse_config",
    "progress",
    "progress_enabled",
    "run_cli",
    "validate",
]

T = TypeVar("T")


def progress_enabled(requested: bool | None = None, stream: TextIO | None = None) -> bool:
    """Progress bars show on a terminal unless turned off; ``GEN_PROGRESS=0/1`` overrides the automatic choice."""
    if requested is not None:
        return requested
    env = os.environ.get("GEN_PROGRESS", "").strip().lower()
    if env in {"0", "false", "no", "off"}:
        return False
    if env in {"1", "true", "yes", "on"}:
        return True
    s = stream if stream is not None else sys.stderr
    return bool(getattr(s, "isatty", lambda: False)())


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    enabled: bool | None = None,
    leave: bool = False,
    **kwargs: Any,
) -> Any:
    """A tqdm bar on stderr that is silent with ``enabled=False`` (the CLI's ``--json``) or without a TTY."""
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        disable=not progress_enabled(enabled),
        leave=leave,
        file=sys.stderr,
        dynamic_ncols=True,
        **kwargs,
    )


def format_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], floatfmt: str = ".4g") -> str:
    """A plain-text table (for the human-readable output of a CLI)."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return format(v, floatfmt)
        return str(v)

    body = [[fmt(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line, sep] + ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in body])


def emit(
    result: Mapping[str, Any],
    *,
    as_json: bool,
    human: Callable[[Mapping[str, Any]], str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Print a command's result: one JSON object with ``--json``, else ``human(result)`` or ``key: value`` lines."""
    from gen_common.jsonio import to_jsonable

    out = stream if stream is not None else sys.stdout
    if as_json:
        out.write(json.dumps(to_jsonable(dict(result))) + "\n")
    elif human is not None:
        out.write(human(result).rstrip("\n") + "\n")
    else:
        for key, value in result.items():
            v = to_jsonable(value)
            if isinstance(v, float):
                v = f"{v:.6g}"
            out.write(f"{key}: {v}\n")
    out.flush()


# Failures a user can fix from the message alone: they end as "error: ..." and exit code 2, not a traceback.
# (CheckpointError and DeviceUnavailableError are matched by name so that this module never imports torch.)
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    ConfigError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
_USER_ERROR_NAMES = {"CheckpointError", "CheckpointNotFoundError", "OfflineError", "DeviceUnavailableError"}


def _is_user_error(exc: BaseException) -> bool:
    if isinstance(exc, USER_ERRORS):
        return True
    return any(c.__name__ in _USER_ERROR_NAMES for c in type(exc).__mro__)


def run_cli(
    main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None, *, prog: str = ""
) -> int:
    """Run ``main(argv)``; user errors print one line on stderr (or a JSON error with --json) and return 2.

    An ImportError whose message says ``pip install ...`` (a missing extra) counts as a user error too.
    Set ``GEN_DEBUG=1`` to see the full traceback instead.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            code = main(args)
        except ImportError as exc:
            # A missing optional extra whose message says what to install is the user's to fix, not a crash.
            if "pip install" not in str(exc):
                raise
            raise ValueError(str(exc)) from exc
        return int(code or 0)
    except Exception as exc:
        if os.environ.get("GEN_DEBUG") or not _is_user_error(exc):
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = f"{prog + ': ' if prog else ''}error: {text}"
        if "--json" in args:
            sys.stdout.write(json.dumps({"error": text, "type": type(exc).__name__}) + "\n")
        sys.stderr.write(msg + "\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog + ': ' if prog else ''}interrupted\n")
        return 130


# --- The command pattern ------------------------------------------------------------------------------------------

COMMON_FLAGS = ("device", "seed", "json", "out", "overwrite")


@dataclass(frozen=True)
class RunContext:
    """What every command gets besides its config: device, seed, output folder and policy, progress.

    Library callers pass one (or nothing: CPU/GPU auto, seed 0, no output folder). ``output(name)`` is the only way
    a run gets a path to write, so the output-folder policy holds for library calls as well as for the CLI.
    """

    device: str = "auto"
    seed: int = 0
    out: Path | None = None
    overwrite: bool = False
    progress: bool | None = None  # None: bars on a terminal only; the CLI's --json turns them off
    _claimed: set[str] = dataclasses.field(default_factory=set, repr=False, compare=False)

    @classmethod
    def of(cls, ctx: RunContext | None = None, **kwargs: Any) -> RunContext:
        """``ctx`` itself, or a fresh context built from ``kwargs``."""
        return ctx if ctx is not None else cls(**kwargs)

    def torch_device(self) -> Any:
        from gen_common.device import resolve_device

        return resolve_device(self.device)

    def generator(self, offset: int = 0) -> Any:
        """A CPU ``torch.Generator`` seeded with ``seed + offset`` (move draws to the device)."""
        from gen_common.seeding import make_generator

        return make_generator(self.seed + offset)

    def output(self, name: str) -> Path:
        """The path of ``name`` inside the output folder (created). Refuses to replace an existing file unless
        ``overwrite``; a name already handed out in this run may be written again (a plot updated during training).
        """
        if self.out is None:
            raise ValueError(f"this command writes {name}: give an output folder (--out DIR)")
        out = Path(self.out).expanduser()
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"--out {out} exists and is not a folder")
        path = out / name
        if name not in self._claimed and path.exists() and not self.overwrite:
            raise FileExistsError(
                f"{path} already exists; pass --overwrite to replace the files this command writes, or choose another --out"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self._claimed.add(name)
        return path

    def bar(self, iterable: Iterable[T] | None = None, **kwargs: Any) -> Any:
        """A progress bar that follows the context's ``progress`` setting."""
        return progress(iterable, enabled=self.progress, **kwargs)


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, the library function (``"module:function"`` so it is imported only when run),
    the config dataclass its flags come from, the files it writes, and how its report reads."""

    name: str
    function: str | Callable[..., Any]
    config: type
    writes: tuple[str, ...] = ()
    out_default: str | None = None
    resumable: bool = False
    human: Callable[[Any], str] | None = None
    help: str | None = None  # default: the first line of the config's docstring
    aliases: tuple[str, ...] = ()

    def resolve(self) -> Callable[..., Any]:
        if callable(self.function):
            return self.function
        module, _, attr = self.function.partition(":")
        return getattr(importlib.import_module(module), attr)

    def summary(self) -> str:
        if self.help:
            return self.help
        doc = (self.config.__doc__ or "").strip()
        if doc.startswith(self.config.__name__ + "("):  # dataclass's generated docstring
            return ""
        return doc.splitlines()[0] if doc else ""


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
    doc = (cmd.config.__doc__ or "").strip()
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


def check_outputs(out: Path | None, writes: Sequence[str], *, overwrite: bool) -> None:
    """Refuse an output folder that already holds a file the command writes, unless ``overwrite``."""
    if out is None or not writes:
        return
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a folder")
    if overwrite or not out.exists():
        return
    found = sorted({p.name for pattern in writes for p in out.glob(pattern)})
    if found:
        shown = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
        raise FileExistsError(
            f"{out} already holds {shown}; pass --overwrite to replace the files this command writes "
            "(nothing else is touched), or choose another --out"
        )


def _report_mapping(report: Any) -> Mapping[str, Any]:
    if report is None:
        return {}
    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        return {f.name: getattr(report, f.name) for f in dataclasses.fields(report)}
    if isinstance(report, Mapping):
        return report
    return {"result": report}


def main_for(
    prog: str,
    commands: Sequence[Command],
    *,
    description: str = "",
    version: str | None = None,
) -> Callable[[Sequence[str] | None], int]:
    """The ``main(argv=None) -> exit code`` of a console script made of ``commands``."""

    def _main(argv: Sequence[str] | None) -> int:
        parser = build_parser(prog, commands, description=description, version=version)
        ns = parser.parse_args(argv)
        cmd: Command | None = getattr(ns, "_command", None)
        if cmd is None:  # no subcommand: the overview is what was asked for
            parser.print_help()
            return 0
        config = parse_config(cmd.config, ns)
        out = Path(ns.out).expanduser() if ns.out else None
        check_outputs(out, cmd.writes, overwrite=ns.overwrite)
        ctx = RunContext(
            device=ns.device,
            seed=ns.seed,
            out=out,
            overwrite=ns.overwrite,
            progress=False if ns.json else None,
        )
        report = cmd.resolve()(config, ctx)
        human = None
        if cmd.human is not None:
            human = lambda _m: cmd.human(report)  # noqa: E731
        emit(_report_mapping(report), as_json=ns.json, human=human)
        return 0

    def main(argv: Sequence[str] | None = None) -> int:
        return run_cli(_main, argv, prog=prog)

    return main
