"""Console output shared by every package's script: progress bars that go quiet with ``--json`` or without a
terminal, tables, one JSON object or readable lines, and the one error path (expected failures are one line and
exit code 2). Imports no torch."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TextIO, TypeVar

from gen_common.config import ConfigError

__all__ = ["USER_ERRORS", "emit", "format_table", "progress", "progress_enabled", "run_cli"]

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
