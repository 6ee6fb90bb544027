"""Safe checkpoint I/O.

Weights are safetensors (no code runs on load), written atomically, with a JSON config beside them. Legacy
``.pt``/``.pth``/``.bin``/``.ckpt`` files are read only through ``torch.load(weights_only=True)``, which refuses
pickled code. Every failure is a `CheckpointError` that says what is wrong and what to do.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gen_common.atomic import atomic_path

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "OfflineError",
    "is_offline",
    "load_state_dict",
    "load_torch_file",
    "resolve_pretrained",
    "save_state_dict",
]

SAFETENSORS_SUFFIXES = {".safetensors"}
LEGACY_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt"}
_ALIAS_KEY = "gen_common.aliases"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, unsafe, or does not fit the model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file or directory does not exist."""


class OfflineError(CheckpointError):
    """A hub id was requested but downloads are off (or impossible)."""


def save_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Save tensors as safetensors, atomically. Tied (storage-sharing) tensors are stored once and restored
    as aliases on load, since safetensors refuses shared storage."""
    tensors: dict[str, torch.Tensor] = {}
    seen: dict[tuple[Any, ...], str] = {}
    aliases: dict[str, str] = {}
    storages: set[int] = set()
    for name, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"state_dict entry {name!r} is a {type(value).__name__}, not a tensor")
        t = value.detach()
        ptr = t.untyped_storage().data_ptr()
        key = (ptr, t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        if t.numel() > 0 and key in seen:  # the same tensor under two names (tied weights)
            aliases[name] = seen[key]
            continue
        seen[key] = name
        t = t.to("cpu").contiguous()
        if t.numel() > 0 and ptr in storages:  # another view of a storage already saved: store its own copy
            t = t.clone()
        storages.add(ptr)
        tensors[name] = t
    meta = dict(metadata or {})
    if aliases:
        meta[_ALIAS_KEY] = json.dumps(aliases)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta or None)
    return Path(path)


def _check_exists(p: Path) -> None:
    if not p.exists():
        raise CheckpointNotFoundError(f"checkpoint not found: {p}")
    if p.is_dir():
        raise CheckpointError(f"{p} is a directory; pass the weights file inside it (or use from_pretrained)")


def load_state_dict(
    path: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """Load tensors from a safetensors file, or from a legacy torch file with ``weights_only=True``.

    A legacy file may hold ``{"state_dict": ...}``, ``{"model": ...}`` or a bare state dict; the first tensor
    mapping found is returned. Pickled code is refused with a message that explains why.
    """
    p = Path(path).expanduser()
    _check_exists(p)
    suffix = p.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        try:
            dev = torch.device(device)
            # safetensors refuses "cpu:0", which is what accelerate names the CPU of a multi-process CPU run
            tensors = load_file(str(p), device="cpu" if dev.type == "cpu" else str(dev))
            from safetensors import safe_open

            with safe_open(str(p), framework="pt") as fh:
                meta = fh.metadata() or {}
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{p} is not a readable safetensors file ({exc}); it may be truncated or corrupt: "
                "re-download or re-save it"
            ) from exc
        for alias, target in json.loads(meta.get(_ALIAS_KEY, "{}")).items():
            tensors[alias] = tensors[target]
        return tensors
    if suffix in LEGACY_SUFFIXES:
        obj = load_torch_file(p, device=device)
        return _find_state_dict(obj, p)
    raise CheckpointError(
        f"unknown checkpoint format {suffix!r} for {p}: use .safetensors (or legacy .pt/.pth/.bin/.ckpt)"
    )


def load_torch_file(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Any:
    """Read a legacy torch file (``.pt``/``.pth``/``.bin``/``.ckpt``) with ``torch.load(weights_only=True)``:
    tensors, numbers, strings and containers of them come back; pickled code is refused with a clear error."""
    p = Path(path).expanduser()
    _check_exists(p)
    try:
        return torch.load(str(p), map_location=device, weights_only=True)
    except Exception as exc:
        # pickle's error type, matched by name; "Unsupported global" is the weights-only unpickler refusing a
        # class or function reference, i.e. code. Anything else means the bytes are not a checkpoint.
        if type(exc).__name__ != "UnpicklingError" or "global" not in str(exc).lower():
            raise CheckpointError(
                f"{p} is not a readable torch checkpoint ({exc}); it may be truncated or corrupt"
            ) from exc
        raise CheckpointError(
            f"{p} contains pickled objects beyond plain tensors, and loading it would run code; refused. "
            "Convert it once in a trusted environment to safetensors "
            "(safetensors.torch.save_file(state_dict, 'model.safetensors'))"
        ) from exc


def _find_state_dict(obj: Any, p: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        for key in ("state_dict", "model", "module", "ema", "net", "model_state_dict"):
            if key in obj:
                try:
                    return _find_state_dict(obj[key], p)
                except CheckpointError:
                    continue
    raise CheckpointError(f"{p} holds no mapping of parameter names to tensors")


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_offline() -> bool:
    """True when the user (or the test suite) asked for no network: HF_HUB_OFFLINE or GEN_OFFLINE."""
    return any(
        os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
        for v in ("HF_HUB_OFFLINE", "GEN_OFFLINE")
    )


def resolve_pretrained(
    name_or_path: str | os.PathLike[str],
    *,
    allow_patterns: Iterable[str] | None = None,
    revision: str | None = None,
) -> Path:
    """Return a local directory for ``name_or_path``: a local directory as is, or a Hugging Face hub id downloaded
    through huggingface_hub (its own cache) when the network is allowed.

    Errors are `CheckpointNotFoundError` for a local path that does not exist and `OfflineError` for a hub id
    while offline, each saying how to proceed.
    """
    text = os.fspath(name_or_path)
    p = Path(text).expanduser()
    if p.is_dir():
        return p
    if p.exists():
        raise CheckpointError(
            f"{p} is a file; from_pretrained expects a directory holding config and weights"
        )
    if text.startswith((".", "/", "~")) or not _HUB_ID.match(text):
        raise CheckpointNotFoundError(f"no such directory: {p}")
    hint = (
        f"download it where you have network access (e.g. `huggingface-cli download {text} --local-dir DIR`) "
        "and pass DIR instead"
    )
    if is_offline():
        raise OfflineError(
            f"{text!r} is not a local directory and the hub is offline (HF_HUB_OFFLINE/GEN_OFFLINE): {hint}"
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise OfflineError(
            f"{text!r} is not a local directory, and loading hub ids needs huggingface_hub "
            f"(pip install 'gen-common[hub]'); or {hint}"
        ) from exc
    try:
        return Path(
            snapshot_download(
                text, allow_patterns=list(allow_patterns) if allow_patterns else None, revision=revision
            )
        )
    except Exception as exc:  # network errors, missing repos, gated repos: all end the same way for the user
        raise OfflineError(
            f"could not fetch {text!r} from the hub ({type(exc).__name__}: {exc}); {hint}"
        ) from exc
