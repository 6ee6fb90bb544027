"""Atomic file writes: a temporary file in the target's folder, flushed, then renamed over the target.

A crash or Ctrl-C leaves either the old file or the new one, never half of one. Written files get the mode a
plain ``open(path, "w")`` would give them (0666 minus the user's umask), not ``mkstemp``'s private 0600.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_write", "atomic_write_json", "atomic_write_text", "file_mode"]

_UMASK_LOCK = threading.Lock()


@functools.cache
def _umask() -> int:
    """The process umask, read once. Linux reports it in /proc without changing it; elsewhere it is set and restored
    at once under a lock (the only portable way to read it; the lock keeps our own threads out of the window)."""
    with contextlib.suppress(OSError):
        m = re.search(r"^Umask:\s*([0-7]+)$", Path("/proc/self/status").read_text(), flags=re.M)
        if m:
            return int(m.group(1), 8)
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The permission bits a new file gets from ``open(path, "w")``: 0o666 without the umask's bits."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on error removed.

    For writers that want a file name rather than a handle (safetensors, matplotlib, torch.save).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes the file 0600; a saved model or plot should be as readable as any file the user writes.
        if hasattr(os, "fchmod"):
            os.fchmod(fd, file_mode())
        else:  # Windows: only the read-only bit exists
            os.chmod(tmp, file_mode())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces ``path`` only when the block finishes without error."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as fh:
        yield fh
        fh.flush()


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int = 2) -> Path:
    from gen_common.jsonio import to_jsonable

    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=indent, sort_keys=False) + "\n")
