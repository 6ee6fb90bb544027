"""Official RADD checkpoints → this package's format.

The released weights (Hugging Face ``JingyangOu/radd-lambda-dce``, ``JingyangOu/radd-t-dce`` and the medium
variants) are ``PyTorchModelHubMixin`` folders: ``config.json`` (the Hydra config: ``tokens``, ``model.hidden_size``,
``model.n_heads``, ``model.n_blocks``, ``model.length``, ...) beside ``model.safetensors`` or
``pytorch_model.bin`` with the official DDiT key names. This module maps names and shapes:

=========================================  =======================================
official                                   radd
=========================================  =======================================
vocab_embed.embedding (V+1, H)             embed.weight
blocks.i.norm1.{weight,bias}               blocks.i.norm_attn.{weight,bias}
blocks.i.attn_qkv.weight                   blocks.i.attn.qkv.weight
blocks.i.attn_out.weight                   blocks.i.attn.proj.weight
blocks.i.norm2.{weight,bias}               blocks.i.norm_mlp.{weight,bias}
blocks.i.mlp.0.{weight,bias}               blocks.i.mlp.fc_in.{weight,bias}
blocks.i.mlp.2.{weight,bias}               blocks.i.mlp.fc_out.{weight,bias}
output_layer.norm_final.{weight,bias}      norm_out.{weight,bias}
output_layer.linear.{weight,bias} (V+1)    head.{weight,bias} (first V rows: the mask column is never predicted)
rotary_emb.inv_freq                        (recomputed; checked)
=========================================  =======================================

An official *training* checkpoint (``checkpoints-meta/checkpoint.pth``: ``model``, ``ema``, ``optimizer``, ``step``)
converts with its EMA weights, as the official ``load_model_local`` evaluates (``ema=False`` for the raw ones); its
Hydra config is YAML, so the sizes come from the weights (the head count from the rotary buffer).

Loading never runs pickled code (safetensors, or ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from gen_common.checkpoint import (
    CheckpointError,
    CheckpointNotFoundError,
    load_state_dict,
    load_torch_file,
    resolve_pretrained,
)
from gen_common.config import read_json
from gen_common.pretrained import load_into, prepare_output_dir
from radd.model import RADD, RADDConfig

__all__ = [
    "convert_checkpoint",
    "from_official_state_dict",
    "is_official_checkpoint",
    "load_official",
    "official_config",
    "to_official_state_dict",
]

_BLOCK_RENAMES = {
    "norm1.weight": "norm_attn.weight",
    "norm1.bias": "norm_attn.bias",
    "attn_qkv.weight": "attn.qkv.weight",
    "attn_out.weight": "attn.proj.weight",
    "norm2.weight": "norm_mlp.weight",
    "norm2.bias": "norm_mlp.bias",
    "mlp.0.weight": "mlp.fc_in.weight",
    "mlp.0.bias": "mlp.fc_in.bias",
    "mlp.2.weight": "mlp.fc_out.weight",
    "mlp.2.bias": "mlp.fc_out.bias",
}
_TOP_RENAMES = {
    "vocab_embed.embedding": "embed.weight",
    "output_layer.norm_final.weight": "norm_out.weight",
    "output_layer.norm_final.bias": "norm_out.bias",
}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.pt", "model.pth", "checkpoint.pth")
_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")


def _strip_prefixes(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        for prefix in ("module.", "_orig_mod.", "score_model."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v
    return out


def official_config(
    config: Mapping[str, Any] | None, state_dict: Mapping[str, torch.Tensor] | None = None
) -> RADDConfig:
    """A `RADDConfig` from the official config dict (Hydra layout, possibly nested under ``"config"``), with the
    sizes checked against (or, without a config, inferred from) the weights."""
    cfg = dict(config or {})
    if "config" in cfg and isinstance(cfg["config"], Mapping):
        cfg = dict(cfg["config"])
    model_cfg = dict(cfg.get("model") or {})
    sd = _strip_prefixes(state_dict) if state_dict is not None else {}
    emb = sd.get("vocab_embed.embedding")
    n_blocks_sd = len({m.group(1) for k in sd if (m := _BLOCK_RE.match(k))}) if sd else None
    vocab = cfg.get("tokens", None if emb is None else emb.shape[0] - 1)
    hidden = model_cfg.get("hidden_size", None if emb is None else emb.shape[1])
    if vocab is None or hidden is None:
        raise CheckpointError(
            "cannot tell the model size: the official config has no 'tokens'/'model.hidden_size' and no weights were given"
        )
    heads = model_cfg.get("n_heads")
    inv_freq = sd.get("rotary_emb.inv_freq")
    if heads is None and inv_freq is not None and inv_freq.numel():
        heads = int(hidden) // (2 * inv_freq.numel())  # the rotary buffer holds head_dim / 2 frequencies
    if heads is None:
        heads = max(1, int(hidden) // 64)  # both released sizes use 64-dimensional heads
    blocks = model_cfg.get("n_blocks", n_blocks_sd)
    if blocks is None:
        raise CheckpointError(
            "cannot tell the number of blocks: no 'model.n_blocks' in the config and no weights"
        )
    rc = RADDConfig(
        vocab_size=int(vocab),
        max_length=int(model_cfg.get("length", 1024)),
        hidden_size=int(hidden),
        num_layers=int(blocks),
        num_heads=int(heads),
        dropout=float(model_cfg.get("dropout", 0.02)),
    )
    if emb is not None and tuple(emb.shape) != (rc.vocab_size + 1, rc.hidden_size):
        raise CheckpointError(
            f"the official config says {rc.vocab_size}+1 tokens × {rc.hidden_size}, but the embedding is "
            f"{tuple(emb.shape)}: config and weights do not belong together"
        )
    if n_blocks_sd is not None and n_blocks_sd and n_blocks_sd != rc.num_layers:
        raise CheckpointError(f"the config says {rc.num_layers} blocks but the weights hold {n_blocks_sd}")
    return rc


def from_official_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the official DDiT keys to this package's names and drop the mask column of the output layer."""
    sd = _strip_prefixes(state_dict)
    if "vocab_embed.embedding" not in sd:
        raise CheckpointError(
            "not an official RADD state dict (no 'vocab_embed.embedding'); for this package's own folders use "
            "RADD.from_pretrained"
        )
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for k, v in sd.items():
        if k in _TOP_RENAMES:
            out[_TOP_RENAMES[k]] = v
        elif k in ("output_layer.linear.weight", "output_layer.linear.bias"):
            # V+1 output rows; row V (the mask) is never a prediction target.
            out["head." + k.rsplit(".", 1)[1]] = v[:-1]
        elif k == "rotary_emb.inv_freq":
            continue
        elif (m := _BLOCK_RE.match(k)) and m.group(2) in _BLOCK_RENAMES:
            out[f"blocks.{m.group(1)}.{_BLOCK_RENAMES[m.group(2)]}"] = v
        else:
            unknown.append(k)
    if unknown:
        raise CheckpointError(f"unexpected keys in the official state dict: {', '.join(unknown[:5])}")
    return out


def to_official_state_dict(model: RADD) -> dict[str, torch.Tensor]:
    """The inverse mapping (the mask column of the output layer is zero): for round-trip tests and export."""
    inv_top = {v: k for k, v in _TOP_RENAMES.items()}
    inv_block = {v: k for k, v in _BLOCK_RENAMES.items()}
    out: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        v = v.detach().clone()
        if k in inv_top:
            out[inv_top[k]] = v
        elif k.startswith("head."):
            pad = torch.zeros((1, *v.shape[1:]), dtype=v.dtype)
            out["output_layer.linear." + k.split(".", 1)[1]] = torch.cat([v, pad])
        elif (m := _BLOCK_RE.match(k)) and m.group(2) in inv_block:
            out[f"blocks.{m.group(1)}.{inv_block[m.group(2)]}"] = v
        else:
            raise KeyError(f"no official name for {k}")
    hd = model.config.hidden_size // model.config.num_heads
    out["rotary_emb.inv_freq"] = 1.0 / (model.config.rope_base ** (torch.arange(0, hd, 2).float() / hd))
    return out


def _read_json(p: Path) -> dict[str, Any]:
    return read_json(p, error=CheckpointError)


def is_official_checkpoint(directory: str | os.PathLike[str]) -> bool:
    """A folder whose config.json is the official Hydra layout (not written by this package)."""
    p = Path(directory) / "config.json"
    if not p.is_file():
        return False
    data = _read_json(p)
    if "_class" in data:
        return False
    data = data.get("config", data) if isinstance(data.get("config"), dict) else data
    return "tokens" in data or "model" in data


RUN_CONFIG = Path(".hydra") / "config.yaml"
RUN_CHECKPOINT = Path("checkpoints-meta") / "checkpoint.pth"


def is_official_run_dir(directory: str | os.PathLike[str]) -> bool:
    """An official training run directory (Hydra's ``.hydra/config.yaml``), as the official ``load_model_local``
    reads it: the composed config there and the weights in ``checkpoints-meta/checkpoint.pth`` (EMA applied)."""
    return (Path(directory).expanduser() / RUN_CONFIG).is_file()


def _read_run_dir(d: Path) -> tuple[dict[str, Any], Path]:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - pyyaml is a dependency
        raise ImportError("reading an official run directory needs pyyaml: pip install pyyaml") from exc
    try:
        cfg = yaml.safe_load((d / RUN_CONFIG).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{d / RUN_CONFIG} is not valid YAML ({exc})") from exc
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{d / RUN_CONFIG} does not hold a config mapping")
    weights = d / RUN_CHECKPOINT
    if not weights.is_file():
        snaps = sorted((d / "checkpoints").glob("checkpoint_*.pth")) if (d / "checkpoints").is_dir() else []
        hint = f"; pass one of its snapshots instead, e.g. {snaps[-1]}" if snaps else ""
        raise CheckpointNotFoundError(f"{weights} not found (the official loader reads it){hint}")
    return cfg, weights


def _weights_in(d: Path) -> Path:
    for name in _WEIGHT_FILES:
        if (d / name).is_file():
            return d / name
    raise CheckpointNotFoundError(f"{d} holds none of {', '.join(_WEIGHT_FILES)}")


def _ema_state_dict(obj: Any, weights: Path) -> dict[str, torch.Tensor] | None:
    """The EMA weights of an official *training* checkpoint (``{"model", "ema", "optimizer", "step"}``, written by
    the official ``utils.save_checkpoint``), named after the ``model`` entry; None when there are none.

    The official EMA keeps an unnamed list ``shadow_params`` in ``model.parameters()`` order, which is the order of
    the state dict without its one buffer (``rotary_emb.inv_freq``); the official ``load_model_local`` evaluates
    with these EMA weights, so the converter does too.
    """
    if not isinstance(obj, Mapping):
        return None
    ema, model_sd = obj.get("ema"), obj.get("model")
    if not (isinstance(ema, Mapping) and isinstance(model_sd, Mapping) and "shadow_params" in ema):
        return None
    names = [k for k in model_sd if not k.endswith("rotary_emb.inv_freq")]
    shadow = list(ema["shadow_params"])
    if len(shadow) != len(names) or any(
        not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(model_sd[n].shape)
        for n, t in zip(names, shadow)
    ):
        raise CheckpointError(
            f"{weights}: the EMA holds {len(shadow)} tensors that do not line up with the {len(names)} model "
            "parameters; pass ema=False (radd convert --no-ema) to load the raw model weights"
        )
    out = dict(model_sd)
    out.update(zip(names, shadow))
    return out


def _read_official_weights(weights: Path, ema: bool) -> dict[str, torch.Tensor]:
    if ema and weights.suffix.lower() in (".pt", ".pth", ".bin", ".ckpt"):
        found = _ema_state_dict(load_torch_file(weights), weights)
        if found is not None:
            return found
    return load_state_dict(weights)


def load_official(
    source: str | os.PathLike[str],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    ema: bool = True,
) -> RADD:
    """Build a `RADD` from an official checkpoint: a training run directory (``.hydra/config.yaml`` +
    ``checkpoints-meta/checkpoint.pth``, as the official ``load_model_local``), a folder (config.json + weights), a
    weights file (sizes
    inferred from the shapes when no official config.json lies beside it), or a Hugging Face id (downloads unless
    offline). A training checkpoint (``checkpoint.pth`` with ``model`` and ``ema``) gives its EMA weights unless
    ``ema=False``."""
    p = Path(source).expanduser()
    if p.is_dir() and is_official_run_dir(p):
        cfg_data, weights = _read_run_dir(p)
    elif p.is_file():
        cfg_data = None
        weights = p
        if is_official_checkpoint(p.parent):
            cfg_data = _read_json(p.parent / "config.json")
        elif p.parent.name == RUN_CHECKPOINT.parent.name and is_official_run_dir(p.parent.parent):
            cfg_data = _read_run_dir(p.parent.parent)[0]
    else:
        d = resolve_pretrained(str(source), allow_patterns=["*.json", "*.safetensors", "*.bin"])
        if (d / "config.json").is_file() and not is_official_checkpoint(d):
            raise CheckpointError(
                f"{d} is not an official RADD checkpoint (its config.json is this package's or unknown); "
                "a folder written by radd itself loads directly: RADD.from_pretrained / --model"
            )
        weights = _weights_in(d)
        cfg_data = _read_json(d / "config.json") if (d / "config.json").is_file() else None
    raw = _read_official_weights(weights, ema)
    converted = from_official_state_dict(raw)  # checks the key names first: the clearest error
    config = official_config(cfg_data, raw)
    model = RADD(config)
    load_into(model, converted, source=str(weights))
    hd = config.hidden_size // config.num_heads
    sd = _strip_prefixes(raw)
    if "rotary_emb.inv_freq" in sd and sd["rotary_emb.inv_freq"].shape[0] != hd // 2:
        raise CheckpointError("the checkpoint's rotary frequencies do not match its head size")
    return model.to(device=device, dtype=dtype).eval()


def convert_checkpoint(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    ema: bool = True,
) -> Path:
    """Convert an official checkpoint to a `RADD.save_pretrained` folder (refuses to overwrite a checkpoint)."""
    prepare_output_dir(destination, overwrite=overwrite)
    model = load_official(source, ema=ema)
    return model.save_pretrained(destination, overwrite=True, converted_from=str(source))
