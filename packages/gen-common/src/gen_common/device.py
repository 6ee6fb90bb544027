"""Device and precision resolution.

`resolve_device("auto")` picks CUDA when present, then Apple's MPS, then the CPU. Dtype names are resolved
against what the device supports, and `autocast` is a no-op where mixed precision would not pay (CPU float32).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = [
    "DeviceUnavailableError",
    "autocast",
    "device_summary",
    "num_threads",
    "resolve_device",
    "resolve_dtype",
    "synchronize",
]


class DeviceUnavailableError(RuntimeError, ValueError):
    """The requested accelerator is not present. A RuntimeError for callers that catch those, and a ValueError so
    that `gen_common.cli.run_cli` reports it as a one-line user error (``--device cuda`` on a CPU-only machine)."""


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float64": torch.float64,
    "fp64": torch.float64,
    "double": torch.float64,
}


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N" | "mps"`` (or a torch.device) into a usable torch.device.

    Asking for an accelerator that is not there is an error that says what to use instead, rather than a
    crash deep inside the first kernel.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device {device!r} was requested but CUDA is not available; use --device cpu or auto"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device {device!r} was requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif dev.type == "mps" and not _mps_available():
        raise DeviceUnavailableError(
            f"device {device!r} was requested but MPS is not available; use --device cpu or auto"
        )
    elif dev.type not in {"cpu", "cuda", "mps"}:
        raise ValueError(
            f"unsupported device type {dev.type!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        )
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device | str = "cpu") -> torch.dtype:
    """Resolve a dtype name; ``None``/``"auto"`` means bfloat16 on CUDA devices that support it, else float32.

    float16 on the CPU is refused: most CPU kernels do not implement it and the rest are slower than float32.
    """
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    if dtype is None or (isinstance(dtype, str) and dtype.lower() == "auto"):
        if dev.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        key = dtype.strip().lower().removeprefix("torch.")
        if key not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}: use one of {sorted(set(_DTYPES))} or 'auto'")
        resolved = _DTYPES[key]
    if resolved == torch.float16 and dev.type == "cpu":
        raise ValueError("float16 is not supported on the CPU; use float32 or bfloat16")
    return resolved


@contextlib.contextmanager
def autocast(device: torch.device | str, dtype: torch.dtype | str | None = None) -> Iterator[None]:
    """Mixed-precision context: bf16/fp16 autocast where asked for, a true no-op for CPU float32.

    ``dtype=None`` means float32 (no autocast). Keeping the no-op path free of `torch.autocast` matters: CPU
    autocast changes matmul dtypes and would make CPU results differ from the float32 reference.
    """
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    dt = torch.float32 if dtype is None else resolve_dtype(dtype, dev)
    if dt in (torch.float32, torch.float64):
        yield
        return
    with torch.autocast(device_type=dev.type, dtype=dt):
        yield


def synchronize(device: torch.device | str) -> None:
    """Wait for queued kernels, so that wall-clock timings measure the work and not its launch."""
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps" and _mps_available():
        torch.mps.synchronize()


def device_summary(device: torch.device | str) -> dict[str, object]:
    """A small JSON-able description of the device, for benchmark and report headers."""
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    info: dict[str, object] = {
        "device": str(dev),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        info["name"] = torch.cuda.get_device_name(dev)
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(dev)))
    return info


@contextlib.contextmanager
def num_threads(threads: int | None) -> Iterator[None]:
    """Run torch with ``threads`` intra-op CPU threads inside the block, restoring the previous count after.

    Tiny CPU workloads (toy models, demos) are often faster on one thread: with small matrices the threads spend
    their time synchronising, and on a busy machine oversubscription makes it several times worse.
    ``None`` leaves the setting alone.
    """
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError("threads must be >= 1")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
