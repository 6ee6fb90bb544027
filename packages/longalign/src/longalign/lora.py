"""LoRA for the UNet as the release places it, through peft, saved so that a stock pipeline reloads it exactly.

Targets (official ``VIS_REPLACE_MODULES``): every Linear and Conv2d inside a ResnetBlock2D, an Attention (or the
older CrossAttention) or a GEGLU block, in module-traversal order (the order of the release's ``lora_vis.pt``).
Defaults r = 32, alpha = r (scale 1), dropout 0.1.

Where peft differs from the release's own LoRA (``modules/lora.py``) and what this module does about it:

- init: the release draws down ~ N(0, std 1/r), up = 0; peft's ``init_lora_weights="gaussian"`` is that exact rule,
  and it is the default here (``init="release"``); ``init="peft"`` gives peft's Kaiming-uniform A.
- dropout: the release applies it to the LoRA *output* (dropout(up(down(x)))), peft to the LoRA *input*
  (up(down(dropout(x)))). ``dropout_on="output"`` (default) reproduces the release by moving the dropout to a
  forward hook on lora_B; ``"input"`` keeps peft's rule. Both are identity in eval mode, so saved weights are the
  same either way.

Saving (`save_lora`) writes peft-format keys under ``unet.`` plus the adapter's LoraConfig as metadata, which
``pipe.load_lora_weights`` reads back exactly. Two traps this avoids (peft 0.21, diffusers 0.42): without the
metadata alpha ≠ r is silently lost (the scale becomes 1); the documented ``convert_state_dict_to_diffusers``
route drops the attention LoRAs when conv/resnet targets are mixed in. `load_lora` also puts the UNet in eval mode
(a loaded LoRA dropout would otherwise stay active wherever the UNet is in training mode).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LORA_ANCESTORS",
    "LoraSpec",
    "add_lora",
    "load_lora",
    "load_release_lora",
    "lora_parameters",
    "lora_state_dict",
    "lora_target_modules",
    "merge_release_lora",
    "release_to_peft",
    "save_lora",
    "write_lora_file",
]

LORA_ANCESTORS = ("ResnetBlock2D", "Attention", "CrossAttention", "GEGLU")
WEIGHT_NAME = "pytorch_lora_weights.safetensors"


@dataclass(frozen=True)
class LoraSpec:
    """LoRA hyper-parameters (release: r = 32, alpha = r, dropout 0.1 on the output, down ~ N(0, 1/r²))."""

    rank: int = 32
    alpha: float | None = None  # None: alpha = rank (scale 1, as the release)
    dropout: float = 0.1
    init: Literal["release", "peft"] = "release"
    dropout_on: Literal["output", "input"] = "output"

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError("rank must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if self.init not in ("release", "peft"):
            raise ValueError(f"unknown init {self.init!r}: use 'release' or 'peft'")
        if self.dropout_on not in ("output", "input"):
            raise ValueError(f"unknown dropout_on {self.dropout_on!r}: use 'output' or 'input'")


def lora_target_modules(unet: nn.Module, ancestors: Sequence[str] = LORA_ANCESTORS) -> list[str]:
    """Full names of the Linear/Conv2d modules under the ancestor classes, in the release's traversal order."""
    names: list[str] = []
    seen: set[str] = set()
    for prefix, module in unet.named_modules():
        if type(module).__name__ not in ancestors:
            continue
        for sub, child in module.named_modules():
            if ".base_layer" in sub or ".lora_" in sub or not sub:  # inner layers of a peft LoRA layer
                continue
            if not isinstance(getattr(child, "base_layer", child), (nn.Linear, nn.Conv2d)):
                continue
            full = f"{prefix}.{sub}" if prefix else sub
            if full not in seen:
                seen.add(full)
                names.append(full)
    if not names:
        raise ValueError(
            f"no Linear/Conv2d under {list(ancestors)} in {type(unet).__name__}: not a diffusers UNet?"
        )
    return names


def _output_dropout_hook(p: float):
    def hook(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        return F.dropout(output, p, module.training)

    return hook


def add_lora(
    unet: nn.Module, spec: LoraSpec | None = None, adapter_name: str = "default", seed: int | None = 0
) -> list[nn.Parameter]:
    """Inject a trainable LoRA (peft, via the UNet's ``add_adapter``) on the release's targets; freeze the rest.
    The initial weights are drawn under ``seed`` (None: from the global RNG). Returns the LoRA parameters (float32)."""
    from peft import LoraConfig

    spec = spec or LoraSpec()
    targets = lora_target_modules(unet)
    config = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha if spec.alpha is not None else spec.rank,
        lora_dropout=spec.dropout,
        init_lora_weights="gaussian" if spec.init == "release" else True,
        target_modules=targets,
    )
    unet.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        unet.add_adapter(config, adapter_name=adapter_name)
    params = []
    for module in unet.modules():
        drop = getattr(module, "lora_dropout", None)
        if isinstance(drop, nn.ModuleDict) and adapter_name in drop:
            if spec.dropout_on == "output" and spec.dropout > 0:
                drop[adapter_name] = nn.Identity()
                module.lora_B[adapter_name].register_forward_hook(_output_dropout_hook(spec.dropout))
            for sub in (module.lora_A[adapter_name], module.lora_B[adapter_name]):
                sub.float()
                for p in sub.parameters():
                    p.requires_grad_(True)
                    params.append(p)
    return params


def lora_parameters(unet: nn.Module) -> list[nn.Parameter]:
    return [p for n, p in unet.named_parameters() if "lora_" in n]


def lora_state_dict(unet: nn.Module, adapter_name: str = "default") -> dict[str, torch.Tensor]:
    """peft-format LoRA tensors of the UNet (keys ``<module>.lora_A.weight`` / ``lora_B.weight``)."""
    from peft.utils import get_peft_model_state_dict

    return get_peft_model_state_dict(unet, adapter_name=adapter_name)


def _adapter_config(unet: nn.Module, adapter_name: str) -> dict[str, Any]:
    cfg = unet.peft_config[adapter_name].to_dict()
    # sets are not JSON; the metadata must round-trip through json
    return json.loads(json.dumps(cfg, default=lambda o: sorted(o) if isinstance(o, set) else str(o)))


def write_lora_file(
    path: str | os.PathLike[str],
    state_dict: dict[str, torch.Tensor],
    config: dict[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    """Atomically write a diffusers LoRA file: peft keys under ``unet.`` and the LoraConfig as
    ``lora_adapter_metadata`` (what ``save_lora_weights(..., unet_lora_adapter_metadata=...)`` writes)."""
    from safetensors.torch import save_file

    from gen_common.atomic import atomic_path

    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; choose another path or pass overwrite=True")
    tensors = {f"unet.{k}": v.detach().to("cpu", torch.float32).contiguous() for k, v in state_dict.items()}
    meta = {
        "format": "pt",
        "lora_adapter_metadata": json.dumps(
            {f"unet.{k}": v for k, v in config.items()}, indent=2, sort_keys=True
        ),
    }
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return target


def save_lora(
    unet: nn.Module,
    directory: str | os.PathLike[str],
    adapter_name: str = "default",
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``pytorch_lora_weights.safetensors`` (peft keys under ``unet.`` + the LoraConfig as metadata) into
    ``directory``; ``pipe.load_lora_weights(directory)`` reloads it to identical outputs."""
    return write_lora_file(
        Path(directory) / WEIGHT_NAME,
        lora_state_dict(unet, adapter_name),
        _adapter_config(unet, adapter_name),
        overwrite=overwrite,
    )


def load_lora(pipe: Any, path: str | os.PathLike[str], adapter_name: str | None = None) -> Any:
    """``pipe.load_lora_weights`` with checks: every tensor of the file must land in the UNet (else ValueError
    naming the first that does not fit), and the UNet ends in eval mode. Returns ``pipe``."""
    from safetensors import safe_open

    p = Path(path)
    file = p / WEIGHT_NAME if p.is_dir() else p
    if not file.is_file():
        raise FileNotFoundError(f"no LoRA file at {file}")
    with safe_open(str(file), framework="pt") as fh:
        keys = [k for k in fh.keys() if k.startswith("unet.")]  # noqa: SIM118 (safe_open is not a dict)
        shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in keys}
    modules = dict(pipe.unet.named_modules())
    for k, shape in shapes.items():
        mod_name = k[len("unet.") :].rsplit(".lora_", 1)[0]
        base = modules.get(mod_name)
        if base is None:
            raise ValueError(
                f"{file}: {k} names no module of this UNet; the LoRA was trained for another model"
            )
        base = getattr(base, "base_layer", base)
        expect_in = base.in_features if isinstance(base, nn.Linear) else base.in_channels
        expect_out = base.out_features if isinstance(base, nn.Linear) else base.out_channels
        if (".lora_A." in k and shape[1] != expect_in) or (".lora_B." in k and shape[0] != expect_out):
            raise ValueError(f"{file}: {k} has shape {shape}, which does not fit {mod_name} of this UNet")
    before = len(lora_parameters(pipe.unet))
    pipe.load_lora_weights(str(file.parent), weight_name=file.name, adapter_name=adapter_name)
    got = len(lora_parameters(pipe.unet)) - before
    if got != len(keys):
        raise ValueError(f"{file}: {len(keys)} LoRA tensors in the file but {got} loaded into the UNet")
    pipe.unet.eval()
    return pipe


# -- the release's lora_vis.pt -----------------------------------------------------------------------------------
def _pairs(
    unet: nn.Module, tensors: Sequence[torch.Tensor]
) -> list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]]:
    """Match the flat release list [up₀, down₀, up₁, down₁, …] to the targets in traversal order, checking shapes."""
    if len(tensors) % 2:
        raise ValueError(f"a release LoRA list holds up/down pairs; got {len(tensors)} tensors")
    targets = lora_target_modules(unet)
    if len(tensors) // 2 != len(targets):
        raise ValueError(
            f"the LoRA file has {len(tensors) // 2} up/down pairs but this UNet has {len(targets)} target modules; "
            "it was saved for another model"
        )
    modules = dict(unet.named_modules())
    out = []
    for i, name in enumerate(targets):
        up, down = tensors[2 * i], tensors[2 * i + 1]
        m = getattr(modules[name], "base_layer", modules[name])
        if isinstance(m, nn.Linear):
            ok = (
                up.ndim == 2
                and down.ndim == 2
                and up.shape[0] == m.out_features
                and down.shape[1] == m.in_features
            )
        else:
            ok = (
                up.ndim == 4
                and down.ndim == 4
                and up.shape[0] == m.out_channels
                and down.shape[1] == m.in_channels // m.groups
                and tuple(down.shape[2:]) == tuple(m.kernel_size)
            )
        ok = ok and up.shape[1] == down.shape[0]
        if not ok:
            raise ValueError(
                f"pair {i} (up {tuple(up.shape)}, down {tuple(down.shape)}) does not fit {name} "
                f"({type(m).__name__} {tuple(m.weight.shape)}); the LoRA file was saved for another model"
            )
        out.append((name, m, up, down))
    return out


def load_release_lora(path: str | os.PathLike[str]) -> list[torch.Tensor]:
    """The flat tensor list of a release ``lora_vis.pt`` (loaded with ``weights_only=True``: no code runs)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no release LoRA file at {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{p} is not a readable torch file of tensors ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(obj, (list, tuple)) or not all(isinstance(t, torch.Tensor) for t in obj):
        raise ValueError(f"{p} is not a release LoRA (a flat list of up/down tensors)")
    return list(obj)


@torch.no_grad()
def merge_release_lora(unet: nn.Module, tensors: Sequence[torch.Tensor], scale: float = 1.0) -> nn.Module:
    """Merge a release LoRA into the UNet's weights, W ← W + scale · up @ down (what the release's
    ``monkeypatch_or_replace_lora_extended`` + ``collapse_lora`` do). Apply several in sequence for LongSD."""
    for _, m, up, down in _pairs(unet, tensors):
        w = m.weight
        delta = up.flatten(1).to(torch.float32) @ down.flatten(1).to(torch.float32)
        w.add_((scale * delta).reshape(w.shape).to(w.dtype))
    return unet


def release_to_peft(unet: nn.Module, tensors: Sequence[torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """(peft state dict, LoraConfig dict) equivalent to a release LoRA (alpha = r: scale 1); save it with
    `write_lora_file` (then ``pipe.load_lora_weights``)."""
    pairs = _pairs(unet, tensors)
    ranks = {up.shape[1] for _, _, up, _ in pairs}
    if len(ranks) != 1:
        raise ValueError(f"mixed LoRA ranks {sorted(ranks)} in one release file")
    r = ranks.pop()
    sd = {}
    for name, _, up, down in pairs:
        sd[f"{name}.lora_A.weight"] = down.to(torch.float32).contiguous()
        sd[f"{name}.lora_B.weight"] = up.to(torch.float32).contiguous()
    cfg = {
        "r": r,
        "lora_alpha": r,
        "lora_dropout": 0.0,
        "target_modules": [name for name, *_ in pairs],
        "init_lora_weights": True,
        "peft_type": "LORA",
    }
    return sd, cfg
