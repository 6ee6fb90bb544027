"""Key-frame and temporal attention on a stock diffusers UNet / ControlNet, through attention processors.

As the precursor (ControlVideo) places them:

- **key-frame attention** in every ``attn1`` of the UNet and the ControlNet: queries from every frame, keys and
  values from the key frame only (frame ``key_frame`` of each video, default 0);
- **temporal attention** over the frames at each spatial location, reading ``attn1``'s input (the block's
  ``norm1`` output), with no positional encoding, through a zero-initialised 1×1 conv, added to the key-frame
  attention output — in UNet down blocks 0–2 and up blocks 1–3 only (not the mid block, not the ControlNet).

Frames travel in the batch: a batch of ``B = videos × frames`` images, consecutive ``frames`` entries forming one
video, and the frame count reaches the processors as ``cross_attention_kwargs={"num_frames": F}``. diffusers
filters those keywords by the processor's ``__call__`` signature (a processor with only ``forward`` would lose them
with a logged warning), so every processor here defines ``__call__`` and every attention of an inflated model gets
one that accepts ``num_frames``.

At initialisation (zero conv) the inflated model equals the image model on the key frame, and with one frame it
equals the image model exactly at any weights: key-frame attention is then self-attention, and temporal attention
over a single frame is skipped (it would only add a learned per-token linear map, not temporal mixing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PRECURSOR_TRAINABLE",
    "FrameAwareAttnProcessor",
    "KeyFrameAttnProcessor",
    "KeyFrameTemporalAttnProcessor",
    "frame_kwargs",
    "inflate_controlnet",
    "inflate_unet",
    "is_inflated",
    "select_trainable",
    "temporal_processors",
]

# The precursor's pose configuration: module names ending in one of these are trained (norm_temp is listed there
# but no such module exists; kept so the rule reads as the precursor's).
PRECURSOR_TRAINABLE = ("attn1.to_out", "attn_temp", "norm_temp", "conv_temp")

_BLOCK = re.compile(r"^(down_blocks|up_blocks|mid_block)\.?(\d+)?\.")


def frame_kwargs(num_frames: int, key_frame: int = 0) -> dict[str, int]:
    """The ``cross_attention_kwargs`` that carry the frame layout to the processors."""
    return {"num_frames": int(num_frames), "key_frame": int(key_frame)}


def _check_frames(batch: int, num_frames: int, key_frame: int) -> int:
    if num_frames < 1 or batch % num_frames:
        raise ValueError(f"a batch of {batch} images is not a whole number of {num_frames}-frame videos")
    if not 0 <= key_frame < num_frames:
        raise ValueError(f"key_frame {key_frame} is outside 0..{num_frames - 1}")
    return batch // num_frames


def _heads(attn: Any, x: torch.Tensor) -> torch.Tensor:
    b, n, c = x.shape
    return x.view(b, n, attn.heads, c // attn.heads).transpose(1, 2)


def key_frame_attention(
    attn: Any,
    hidden_states: torch.Tensor,
    encoder_hidden_states: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    num_frames: int = 1,
    key_frame: int = 0,
) -> torch.Tensor:
    """diffusers' scaled-dot-product attention, except that for self-attention the keys and values of every frame
    are those of the video's key frame. All frames of a video share one K/V, so their queries are concatenated
    into one sequence: one attention call per video, no copies of K/V."""
    if attn.spatial_norm is not None or getattr(attn, "added_kv_proj_dim", None) is not None:
        raise NotImplementedError("key-frame attention supports Stable Diffusion's attention layers only")
    residual = hidden_states
    input_ndim = hidden_states.ndim
    if input_ndim == 4:
        b_, c_, h_, w_ = hidden_states.shape
        hidden_states = hidden_states.view(b_, c_, h_ * w_).transpose(1, 2)
    batch, seq, _ = hidden_states.shape
    if attn.group_norm is not None:
        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
    self_attn = encoder_hidden_states is None
    query = attn.to_q(hidden_states)
    if self_attn and num_frames > 1:
        if attention_mask is not None:
            raise ValueError("key-frame attention does not take an attention mask on self-attention")
        videos = _check_frames(batch, num_frames, key_frame)
        kv_src = hidden_states.view(videos, num_frames, seq, -1)[:, key_frame]
        query = query.reshape(videos, num_frames * seq, -1)  # frames of a video in one query sequence
        mask = None
    else:
        kv_src = hidden_states if self_attn else encoder_hidden_states
        if not self_attn and attn.norm_cross:
            kv_src = attn.norm_encoder_hidden_states(kv_src)
        mask = attention_mask
        if mask is not None:
            mask = attn.prepare_attention_mask(mask, seq, batch)
            mask = mask.view(batch, attn.heads, -1, mask.shape[-1])
    key, value = attn.to_k(kv_src), attn.to_v(kv_src)
    q, k, v = _heads(attn, query), _heads(attn, key), _heads(attn, value)
    if attn.norm_q is not None:
        q = attn.norm_q(q)
    if attn.norm_k is not None:
        k = attn.norm_k(k)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, is_causal=False)
    out = out.transpose(1, 2).reshape(batch, seq, -1).to(q.dtype)
    out = attn.to_out[0](out)
    out = attn.to_out[1](out)
    if input_ndim == 4:
        out = out.transpose(-1, -2).reshape(b_, c_, h_, w_)
    if attn.residual_connection:
        out = out + residual
    return out / attn.rescale_output_factor


class KeyFrameAttnProcessor:
    """``attn1`` processor: queries from every frame, keys/values from the key frame (ControlVideo eq. for
    key-frame attention; with one frame, plain self-attention)."""

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        num_frames: int = 1,
        key_frame: int = 0,
    ) -> torch.Tensor:
        return key_frame_attention(
            attn, hidden_states, encoder_hidden_states, attention_mask, num_frames, key_frame
        )


class FrameAwareAttnProcessor:
    """Plain attention for the layers that do not mix frames (cross-attention); it accepts the frame keywords so
    diffusers neither drops them with a warning nor passes them where they do not belong."""

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        num_frames: int = 1,
        key_frame: int = 0,
    ) -> torch.Tensor:
        return key_frame_attention(attn, hidden_states, encoder_hidden_states, attention_mask, 1, 0)


class KeyFrameTemporalAttnProcessor(nn.Module):
    """``attn1`` processor of the temporal blocks: key-frame attention plus ``conv_temp(attn_temp(x))``, where
    ``attn_temp`` attends over the frames at each spatial position of ``x`` (attn1's input), without positional
    encoding, and ``conv_temp`` is a zero-initialised 1×1 conv (applied to tokens as the equal linear map)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        from diffusers.models.attention_processor import Attention, AttnProcessor2_0

        self.attn_temp = Attention(
            query_dim=dim, heads=heads, dim_head=dim // heads, bias=False, out_bias=True
        )
        self.attn_temp.set_processor(AttnProcessor2_0())
        self.conv_temp = nn.Conv2d(dim, dim, kernel_size=1)
        nn.init.zeros_(self.conv_temp.weight)
        nn.init.zeros_(self.conv_temp.bias)

    def temporal(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        batch, seq, dim = x.shape
        videos = batch // num_frames
        t = x.view(videos, num_frames, seq, dim).transpose(1, 2).reshape(videos * seq, num_frames, dim)
        t = self.attn_temp(t)
        t = t.view(videos, seq, num_frames, dim).transpose(1, 2).reshape(batch, seq, dim)
        return F.linear(t, self.conv_temp.weight[:, :, 0, 0], self.conv_temp.bias)

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        num_frames: int = 1,
        key_frame: int = 0,
    ) -> torch.Tensor:
        out = key_frame_attention(
            attn, hidden_states, encoder_hidden_states, attention_mask, num_frames, key_frame
        )
        if num_frames > 1 and encoder_hidden_states is None:
            out = out + self.temporal(hidden_states, num_frames).to(out.dtype)
        return out

    forward = __call__


def _block_of(name: str) -> tuple[str, int | None]:
    m = _BLOCK.match(name)
    if not m:
        return "", None
    return m.group(1), (int(m.group(2)) if m.group(2) is not None else None)


def _attentions(model: nn.Module) -> Iterable[tuple[str, Any]]:
    from diffusers.models.attention_processor import Attention

    inside_temporal = set()
    for name, module in model.named_modules():
        if isinstance(module, KeyFrameTemporalAttnProcessor):
            inside_temporal.add(name + ".")
    for name, module in model.named_modules():
        if isinstance(module, Attention) and not any(name.startswith(p) for p in inside_temporal):
            yield name, module


def inflate_unet(
    unet: nn.Module,
    temporal_down: Iterable[int] = (0, 1, 2),
    temporal_up: Iterable[int] = (1, 2, 3),
    seed: int = 0,
) -> nn.Module:
    """Install key-frame attention in every ``attn1`` of ``unet`` and temporal attention in the ``attn1`` of the
    transformer blocks of down blocks ``temporal_down`` and up blocks ``temporal_up`` (in place; returns ``unet``).
    Temporal weights are initialised under ``seed`` (the conv is zero). Re-inflating keeps existing temporal
    modules."""
    down, up = set(temporal_down), set(temporal_up)
    p = next(unet.parameters())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, attn in list(_attentions(unet)):
            if not name.endswith("attn1"):
                attn.set_processor(FrameAwareAttnProcessor())
                continue
            kind, idx = _block_of(name)
            wants_temporal = (kind == "down_blocks" and idx in down) or (kind == "up_blocks" and idx in up)
            if wants_temporal:
                if not isinstance(attn.processor, KeyFrameTemporalAttnProcessor):
                    dim = attn.to_q.in_features
                    attn.set_processor(KeyFrameTemporalAttnProcessor(dim, attn.heads).to(p.device, p.dtype))
            else:
                attn.set_processor(KeyFrameAttnProcessor())
    unet.posecrafter_temporal = {"down": sorted(down), "up": sorted(up)}
    return unet


def inflate_controlnet(controlnet: nn.Module) -> nn.Module:
    """Key-frame attention in every ``attn1`` of ``controlnet`` (no temporal modules: the precursor has none there)."""
    for name, attn in list(_attentions(controlnet)):
        attn.set_processor(KeyFrameAttnProcessor() if name.endswith("attn1") else FrameAwareAttnProcessor())
    return controlnet


def temporal_processors(model: nn.Module) -> dict[str, KeyFrameTemporalAttnProcessor]:
    return {n: m for n, m in model.named_modules() if isinstance(m, KeyFrameTemporalAttnProcessor)}


def is_inflated(model: nn.Module) -> bool:
    return any(
        isinstance(a.processor, (KeyFrameAttnProcessor, KeyFrameTemporalAttnProcessor))
        for _, a in _attentions(model)
    )


def select_trainable(
    models: dict[str, nn.Module], patterns: Iterable[str] = PRECURSOR_TRAINABLE
) -> dict[str, nn.Parameter]:
    """Freeze every parameter of ``models`` and unfreeze those of the modules whose names end in one of
    ``patterns`` (the precursor's rule); returns them as ``{"<model>.<param name>": param}``.

    Unlike the precursor (which leaves ``requires_grad`` on everywhere and clips the norm over all parameters),
    frozen parameters get no gradients: nothing piles up in them and they do not inflate the clipping norm.
    """
    pats = tuple(patterns)
    out: dict[str, nn.Parameter] = {}
    for prefix, model in models.items():
        model.requires_grad_(False)
        for mname, module in model.named_modules():
            if mname.endswith(pats):
                for pname, p in module.named_parameters():
                    p.requires_grad_(True)
                    out[f"{prefix}.{mname}.{pname}"] = p
    return out
