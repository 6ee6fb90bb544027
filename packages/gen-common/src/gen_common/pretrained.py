"""`save_pretrained` / `from_pretrained` for torch modules with a frozen-dataclass config.

A directory holds ``config.json`` (the dataclass fields plus ``_class``/``_library`` metadata) and
``model.safetensors``. Loading checks the class, builds the model from the config, and reports a config/weights
mismatch as a readable list instead of a wall of tensor names.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from gen_common.checkpoint import (
    CheckpointError,
    CheckpointNotFoundError,
    load_state_dict,
    resolve_pretrained,
    save_state_dict,
)
from gen_common.config import ConfigError, load_config, save_config

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "PretrainedMixin", "load_into", "prepare_output_dir"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_LEGACY_WEIGHTS = ("pytorch_model.bin", "model.pt", "model.pth")

M = TypeVar("M", bound="PretrainedMixin")


def prepare_output_dir(
    directory: str | os.PathLike[str], *, overwrite: bool, marker: str = CONFIG_NAME
) -> Path:
    """Create ``directory``; refuse to write over an existing checkpoint (``marker`` present) unless ``overwrite``."""
    d = Path(directory).expanduser()
    if d.exists() and not d.is_dir():
        raise FileExistsError(f"{d} exists and is not a directory")
    if (d / marker).exists() and not overwrite:
        raise FileExistsError(
            f"{d} already holds a checkpoint; pass overwrite=True (CLI: --overwrite) or choose another folder"
        )
    d.mkdir(parents=True, exist_ok=True)
    return d


def load_into(
    module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], *, strict: bool = True, source: str = ""
) -> None:
    """`load_state_dict` with shape checks first and a summary error that says what does not fit."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if shapes:
        problems.append(
            f"{len(shapes)} shape mismatch(es): "
            + "; ".join(shapes[:5])
            + (" ..." if len(shapes) > 5 else "")
        )
    if strict and missing:
        problems.append(
            f"{len(missing)} missing key(s): " + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        )
    if strict and unexpected:
        problems.append(
            f"{len(unexpected)} unexpected key(s): "
            + ", ".join(unexpected[:5])
            + (" ..." if len(unexpected) > 5 else "")
        )
    if problems:
        where = f" from {source}" if source else ""
        raise CheckpointError(
            f"weights{where} do not fit {type(module).__name__}: "
            + " | ".join(problems)
            + ". The config beside the weights must describe the model that produced them"
            " (for an official checkpoint, use the package's converter)."
        )
    module.load_state_dict(dict(state_dict), strict=strict)


class PretrainedMixin:
    """Mix into an ``nn.Module`` whose ``__init__`` takes one config dataclass (stored as ``self.config``)."""

    config_class: ClassVar[type]

    def save_pretrained(
        self, directory: str | os.PathLike[str], *, overwrite: bool = False, **metadata: Any
    ) -> Path:
        if not isinstance(self, torch.nn.Module):
            raise TypeError("PretrainedMixin must be mixed into a torch.nn.Module")
        d = prepare_output_dir(directory, overwrite=overwrite)
        cfg = self.config  # type: ignore[attr-defined]
        # Weights first, config last: a folder with a config always has the weights that belong to it.
        save_state_dict(self.state_dict(), d / WEIGHTS_NAME, metadata={"format": "pt"})
        save_config(
            cfg,
            d / CONFIG_NAME,
            **{"class": type(self).__name__, "library": type(self).__module__.split(".")[0], **metadata},
        )
        return d

    @classmethod
    def from_pretrained(
        cls: type[M],
        name_or_path: str | os.PathLike[str],
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        strict: bool = True,
        convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
        **config_overrides: Any,
    ) -> M:
        """Load from a local directory or a hub id. ``convert`` maps foreign key names (official checkpoints)."""
        d = resolve_pretrained(
            name_or_path, allow_patterns=["*.json", "*.safetensors", "*.bin", "*.pt", "*.pth"]
        )
        cfg_path = d / CONFIG_NAME
        if not cfg_path.is_file():
            raise CheckpointNotFoundError(
                f"{d} has no {CONFIG_NAME}; is it a {cls.__name__} checkpoint folder?"
            )
        import json

        try:
            meta = json.loads(cfg_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{cfg_path} is not valid JSON ({exc})") from exc
        saved_class = meta.get("_class") if isinstance(meta, dict) else None
        if saved_class is not None and saved_class != cls.__name__:
            raise CheckpointError(f"{d} holds a {saved_class}, not a {cls.__name__}")
        try:
            config = load_config(cls.config_class, cfg_path)
        except ConfigError as exc:
            raise CheckpointError(f"{cfg_path}: {exc}") from exc
        if config_overrides:
            config = dataclasses.replace(config, **config_overrides)
        weights = d / WEIGHTS_NAME
        if not weights.is_file():
            legacy = [d / n for n in _LEGACY_WEIGHTS if (d / n).is_file()]
            if not legacy:
                raise CheckpointNotFoundError(f"{d} has no {WEIGHTS_NAME}")
            weights = legacy[0]
        state = load_state_dict(weights)
        if convert is not None:
            state = convert(state)
        model = cls(config)  # type: ignore[call-arg]
        load_into(model, state, strict=strict, source=str(weights))  # type: ignore[arg-type]
        model.to(device=device, dtype=dtype)  # type: ignore[attr-defined]
        model.eval()  # type: ignore[attr-defined]
        return model
