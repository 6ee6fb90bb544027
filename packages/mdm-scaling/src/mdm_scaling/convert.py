"""Converter for the released SMDM checkpoints (``nieshen/SMDM`` on the Hugging Face hub; lit-gpt key names).

Official layout (``lit_gpt/diffmodel.py`` ``TransEncoder`` for the MDM, ``lit_gpt/model.py`` ``GPT`` for the ARM):

- ``transformer.wte.weight``: (V + 1, d) for the MDM (the last row is the mask), (V, d) for the ARM;
- ``transformer.h.{i}.norm_1.weight`` / ``norm_2.weight``: RMSNorm weights;
- ``transformer.h.{i}.attn.attn.weight``: packed q/k/v, grouped per key/value head: rows are
  ``(groups, q_per_kv + 2, head_size)`` = [the group's queries, its key, its value];
- ``transformer.h.{i}.attn.proj.weight``: output projection;
- ``transformer.h.{i}.mlp.swiglu.w1/w2/w3.weight``: xformers SwiGLU, ``w3(silu(w1 x) · w2 x)``;
- ``transformer.ln_f.weight``, ``lm_head.weight`` (V, d).

Ours packs q/k/v as [all queries | all keys | all values]; the conversion reorders those rows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import torch

from gen_common.checkpoint import CheckpointError, load_state_dict
from mdm_scaling.config import PAPER_PRESETS, ModelConfig, preset
from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM

__all__ = ["convert_smdm_state_dict", "infer_smdm_config", "load_smdm_checkpoint", "to_smdm_state_dict"]

_PREFIXES = ("_forward_module.", "module.", "_orig_mod.", "model.")
_LAYER = re.compile(r"^transformer\.h\.(\d+)\.")


def _strip(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        for p in _PREFIXES:
            if k.startswith(p) and not k.startswith("transformer") and not k.startswith("lm_head"):
                k = k[len(p) :]
        out[k] = v
    return out


def infer_smdm_config(
    sd: Mapping[str, torch.Tensor],
    *,
    n_head: int | None = None,
    n_query_groups: int | None = None,
    block_size: int = 2048,
) -> tuple[ModelConfig, str]:
    """Read the config from the tensor shapes; returns ``(config, "mdm" | "arm")``.

    The number of heads is not visible in the shapes of a multi-head checkpoint; it is taken from ``n_head`` or,
    failing that, from the paper preset with the same depth, width and FFN size.
    """
    sd = _strip(sd)
    for key in ("transformer.wte.weight", "lm_head.weight", "transformer.ln_f.weight"):
        if key not in sd:
            raise CheckpointError(
                f"not an SMDM/lit-gpt state dict: {key!r} is missing (keys start with {sorted(sd)[:3]})"
            )
    vocab, d = sd["lm_head.weight"].shape
    rows = sd["transformer.wte.weight"].shape[0]
    if rows == vocab + 1:
        arch = "mdm"
    elif rows == vocab:
        arch = "arm"
    else:
        raise CheckpointError(f"embedding has {rows} rows but the head predicts {vocab} tokens")
    layers = {int(m.group(1)) for k in sd if (m := _LAYER.match(k))}
    n_layer = len(layers)
    if layers != set(range(n_layer)):
        raise CheckpointError(f"layer indices are not contiguous: {sorted(layers)[:10]}")
    inter = sd["transformer.h.0.mlp.swiglu.w1.weight"].shape[0]
    qkv_rows = sd["transformer.h.0.attn.attn.weight"].shape[0]
    if n_head is None:
        match = [
            (h, name)
            for name, (nl, h, e, i) in PAPER_PRESETS.items()
            if (nl, e, i) == (n_layer, d, inter) and qkv_rows == 3 * d
        ]
        if not match:
            raise CheckpointError(
                f"cannot tell the number of heads of a {n_layer}-layer, width-{d} checkpoint; pass n_head "
                "(CLI: --n-head) or --preset"
            )
        n_head = match[0][0]
    hs = d // n_head
    groups = n_query_groups if n_query_groups is not None else (qkv_rows // hs - n_head) // 2
    cfg = ModelConfig(
        vocab_size=vocab,
        n_layer=n_layer,
        n_head=n_head,
        n_embd=d,
        intermediate_size=inter,
        n_query_groups=None if groups == n_head else groups,
        block_size=block_size,
    )
    if (n_head + 2 * cfg.groups) * hs != qkv_rows:
        raise CheckpointError(f"qkv has {qkv_rows} rows, which does not fit n_head={n_head}, groups={groups}")
    return cfg, arch


# Renamed one to one: (ours, official); per layer the names follow "blocks.{i}." / "transformer.h.{i}.".
_GLOBAL_KEYS = (("wte.weight", "transformer.wte.weight"), ("norm_f.weight", "transformer.ln_f.weight"),
                ("lm_head.weight", "lm_head.weight"))  # fmt: skip
_LAYER_KEYS = (
    ("attn.proj.weight", "attn.proj.weight"),
    ("norm_1.weight", "norm_1.weight"),
    ("norm_2.weight", "norm_2.weight"),
    ("mlp.gate.weight", "mlp.swiglu.w1.weight"),
    ("mlp.up.weight", "mlp.swiglu.w2.weight"),
    ("mlp.down.weight", "mlp.swiglu.w3.weight"),
)


def _renamed(src: Mapping[str, torch.Tensor], n_layer: int, to_official: bool) -> dict[str, torch.Tensor]:
    def pair(ours: str, official: str) -> tuple[str, str]:
        return (ours, official) if to_official else (official, ours)

    out = {}
    for ours, off in _GLOBAL_KEYS:
        s, d = pair(ours, off)
        out[d] = src[s]
    for i in range(n_layer):
        for ours, off in _LAYER_KEYS:
            s, d = pair(f"blocks.{i}.{ours}", f"transformer.h.{i}.{off}")
            out[d] = src[s]
    return out


def convert_smdm_state_dict(sd: Mapping[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """Official key names and qkv layout → this package's (`MaskedDiffusionLM` / `AutoregressiveLM`)."""
    sd = _strip(sd)
    h, g, hs = config.n_head, config.groups, config.head_size
    out = _renamed(sd, config.n_layer, to_official=False)
    for i in range(config.n_layer):
        w = sd[f"transformer.h.{i}.attn.attn.weight"]
        w = w.view(g, h // g + 2, hs, w.shape[-1])  # per group: [its queries, its key, its value]
        q = w[:, : h // g].reshape(h * hs, -1)
        k = w[:, h // g].reshape(g * hs, -1)
        v = w[:, h // g + 1].reshape(g * hs, -1)
        out[f"blocks.{i}.attn.qkv.weight"] = torch.cat([q, k, v]).contiguous()
    return out


def to_smdm_state_dict(model: MaskedDiffusionLM | AutoregressiveLM) -> dict[str, torch.Tensor]:
    """The inverse of `convert_smdm_state_dict`: export to the official key names (to run the official eval)."""
    c = model.config
    h, g, hs = c.n_head, c.groups, c.head_size
    sd = model.state_dict()
    out = _renamed(sd, c.n_layer, to_official=True)
    for i in range(c.n_layer):
        q, k, v = sd[f"blocks.{i}.attn.qkv.weight"].split((h * hs, g * hs, g * hs))
        d = q.shape[-1]
        packed = torch.cat([q.view(g, h // g, hs, d), k.view(g, 1, hs, d), v.view(g, 1, hs, d)], dim=1)
        out[f"transformer.h.{i}.attn.attn.weight"] = packed.reshape(-1, d).contiguous()
    return out


def load_smdm_checkpoint(
    path: str | os.PathLike[str],
    *,
    preset_name: str | None = None,
    n_head: int | None = None,
    block_size: int = 2048,
    rope_cache: str = "float32",
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> MaskedDiffusionLM | AutoregressiveLM:
    """Build our model from an official ``.safetensors`` (or fabric ``.pth``, loaded with ``weights_only``) file.

    ``rope_cache="bfloat16"`` builds the RoPE table as the official code does (cos/sin rounded to bf16), so the
    logits equal the official model's to round-off; the default float32 table is exact but moves them (~5e-2 at 1B).
    """
    from gen_common.pretrained import load_into

    sd = _strip(load_state_dict(path))
    if preset_name is not None:
        n_head = preset(preset_name).n_head
    cfg, arch = infer_smdm_config(sd, n_head=n_head, block_size=block_size)
    cfg = cfg.replace(rope_cache=rope_cache)
    if preset_name is not None:
        cfg = cfg.replace(name=preset(preset_name).name)
    model = (MaskedDiffusionLM if arch == "mdm" else AutoregressiveLM)(cfg)
    load_into(model, convert_smdm_state_dict(sd, cfg), source=str(path))
    return model.to(device=device, dtype=dtype).eval()
