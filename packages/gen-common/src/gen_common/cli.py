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

import dataclasses
import importlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gen_common.config import arg, validate
from gen_common.console import USER_ERRORS, emit, format_table, progress, progress_enabled, run_cli
from gen_common.flags import COMMON_FLAGS, add_common_args, build_parser, parse_config

__all__ = [
    "COMMON_FLAGS",
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


# --- The command pattern ------------------------------------------------------------------------------------------


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

    def publish(
        self, write: Callable[[Path], Any], *, prefix: str = "", last: tuple[str, ...] = ("config.json",)
    ) -> list[Path]:
        """Let ``write(folder)`` write files (e.g. ``save_pretrained``) into a scratch folder inside the output
        folder, then move each to ``output(prefix + relative name)``: every refusal comes before the first move, and
        names ending in ``last`` move last (a folder with a config holds the weights that belong to it). Returns the
        final paths in the order written files were found (sorted)."""
        import tempfile

        if self.out is None:
            raise ValueError("this command writes files: give an output folder (--out DIR)")
        out = Path(self.out).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".gen-publish-", dir=out) as tmp:
            write(Path(tmp))
            files = sorted(p for p in Path(tmp).rglob("*") if p.is_file())
            names = [prefix + p.relative_to(tmp).as_posix() for p in files]
            targets = [self.output(n) for n in names]
            order = sorted(range(len(files)), key=lambda i: (names[i].endswith(last), names[i]))
            for i in order:
                os.replace(files[i], targets[i])
            return targets

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
