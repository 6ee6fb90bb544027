"""Input checks and the optional-dependency gate shared by the metrics (one-line ValueErrors)."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import torch

INSTALL_HINT = 'pip install "gen-common[metrics]"'


def require(module: str, what: str) -> Any:
    """Import ``module`` or raise an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{what} needs {module.split('.')[0]}: {INSTALL_HINT}") from exc


def finite_tensor(x: Any, name: str) -> torch.Tensor:
    """``x`` as a tensor; NaN or infinite entries are a ValueError."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values; check the inputs")
    return x


def images4d(x: Any, name: str, channels: int | None = 3) -> torch.Tensor:
    """A finite image batch (N, C, H, W)."""
    x = finite_tensor(x, name)
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        c = "C" if channels is None else str(channels)
        raise ValueError(f"{name} must be images (N, {c}, H, W), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    return x


def features2d(x: Any, name: str, min_rows: int = 1) -> np.ndarray:
    """Finite features (N, D) as float64 numpy, with at least ``min_rows`` rows."""
    t = finite_tensor(x, name)
    if t.ndim != 2:
        raise ValueError(f"{name} must be features (N, D), got shape {tuple(t.shape)}")
    if t.shape[0] < min_rows:
        raise ValueError(f"{name} has {t.shape[0]} rows; at least {min_rows} are needed")
    return t.detach().cpu().double().numpy()
