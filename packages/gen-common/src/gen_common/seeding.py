"""Explicit randomness.

Library code takes a `torch.Generator` argument instead of touching global RNG state. Noise is drawn on the
generator's device (the CPU by default) and then moved, so one seed gives the same numbers on any device.
Whole-process seeding exists only as the explicit call `seed_everything`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["make_generator", "rand", "randint", "randn", "seed_everything", "split_seed"]


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded with ``seed`` (non-deterministic when ``None``) on ``device`` (CPU by default)."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def split_seed(seed: int, *keys: int) -> int:
    """Derive an independent 63-bit seed from ``seed`` and integer keys (e.g. a step number).

    A cryptographic hash of the whole tuple, so distinct tuples never share a stream in practice (an additive mix
    would make ``(s, k)`` and ``(s + 1, k - 1)`` collide). Used where a stream must be reproducible from
    (seed, step) alone, as in exact training resume.
    """
    payload = ",".join(str(int(v)) for v in (seed, *keys)).encode()
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "little") & 0x7FFFFFFFFFFFFFFF


def _gen_device(generator: torch.Generator | None) -> torch.device:
    return torch.device("cpu") if generator is None else generator.device


def randn(
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal noise drawn on the generator's device, then moved to ``device``."""
    out = torch.randn(tuple(shape), generator=generator, device=_gen_device(generator), dtype=dtype)
    return out if device is None else out.to(device)


def rand(
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform [0, 1) noise drawn on the generator's device, then moved to ``device``."""
    out = torch.rand(tuple(shape), generator=generator, device=_gen_device(generator), dtype=dtype)
    return out if device is None else out.to(device)


def randint(
    low: int,
    high: int,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Integers in [low, high) drawn on the generator's device, then moved to ``device``."""
    out = torch.randint(low, high, tuple(shape), generator=generator, device=_gen_device(generator))
    return out if device is None else out.to(device)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices). Call it explicitly; nothing in the library does.

    ``deterministic=True`` also asks torch for deterministic kernels (slower; errors on ops that have none).
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - seeding the legacy global state is the point here
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
