"""MVDream's multi-view UNet in plain PyTorch, reading the diffusers-format ports' weights as they are.

The ports (``ashawkey/mvdream-sd2.1-diffusers``, ``ashawkey/imagedream-ipmv-diffusers``) ship their UNet class in a
``mv_unet.py`` that imports xformers (CUDA only) and einops. This module is an independent implementation of the same
network for the released configuration (SD 2.1 base: ``num_head_channels`` 64, linear transformer projections, no
scale-shift norm, convolutional resampling) with the same parameter names, so ``unet/*.safetensors`` loads without
the port's file, on any device, with PyTorch's fused attention. Parity with the port's class is tested on a tiny
configuration (tests/test_multiview.py).

The network is the LDM UNet with two changes (MVDream, Shi et al. 2023, Sec. 3.1): each transformer's
self-attention runs over the tokens of all ``num_frames`` views of an object at once, and a 16-number camera
(flattened camera-to-world matrix) is embedded by an MLP and added to the timestep embedding. ImageDream (Wang & Shi
2023) adds, with ``ip_dim > 0``, a perceiver resampler from CLIP image tokens to ``ip_dim`` context tokens that every
cross-attention attends to through separate key/value projections, and writes the reference image's latent into
the last frame of each object.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MultiViewUNet"]


def _timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], -1)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, d = x.shape
    return x.view(b, n, heads, d // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class _Attention(nn.Module):
    """Multi-head attention (no biases on q/k/v); with ``ip_dim`` the last ``ip_dim`` context tokens are image
    tokens, attended separately and added with weight ``ip_weight`` (ImageDream's decoupled cross-attention)."""

    def __init__(
        self, dim: int, heads: int, dim_head: int, context_dim: int | None = None, ip_dim=0, ip_weight=1.0
    ):
        super().__init__()
        inner, ctx = heads * dim_head, context_dim or dim
        self.heads, self.ip_dim, self.ip_weight = heads, ip_dim, ip_weight
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(ctx, inner, bias=False)
        self.to_v = nn.Linear(ctx, inner, bias=False)
        if ip_dim > 0:
            self.to_k_ip = nn.Linear(ctx, inner, bias=False)
            self.to_v_ip = nn.Linear(ctx, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))

    def forward(self, x, context=None):
        context = x if context is None else context
        q = _heads(self.to_q(x), self.heads)
        if self.ip_dim > 0:
            context, image = context[:, : -self.ip_dim], context[:, -self.ip_dim :]
        out = F.scaled_dot_product_attention(
            q, _heads(self.to_k(context), self.heads), _heads(self.to_v(context), self.heads)
        )
        if self.ip_dim > 0:
            k, v = _heads(self.to_k_ip(image), self.heads), _heads(self.to_v_ip(image), self.heads)
            out = out + self.ip_weight * F.scaled_dot_product_attention(q, k, v)
        return self.to_out(_merge(out))


class _GEGLU(nn.Module):
    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x):
        a, gate = self.proj(x).chunk(2, -1)
        return a * F.gelu(gate)


class _Block3D(nn.Module):
    """Self-attention across all views' tokens, cross-attention to the context, gated feed-forward."""

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int, ip_dim: int, ip_weight: float):
        super().__init__()
        self.attn1 = _Attention(dim, heads, dim_head)
        self.ff = nn.Module()
        self.ff.net = nn.Sequential(_GEGLU(dim, 4 * dim), nn.Dropout(0.0), nn.Linear(4 * dim, dim))
        self.attn2 = _Attention(dim, heads, dim_head, context_dim, ip_dim, ip_weight)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x, context, num_frames):
        n, tokens, c = x.shape
        y = x.reshape(n // num_frames, num_frames * tokens, c)  # one sequence per object: every view's tokens
        y = self.attn1(self.norm1(y)) + y
        x = y.reshape(n, tokens, c)
        x = self.attn2(self.norm2(x), context) + x
        return self.ff.net(self.norm3(x)) + x


class _Transformer(nn.Module):
    def __init__(
        self, ch: int, heads: int, dim_head: int, context_dim: int, depth: int, ip_dim: int, ip_weight
    ):
        super().__init__()
        inner = heads * dim_head
        self.norm = nn.GroupNorm(32, ch, eps=1e-6)
        self.proj_in = nn.Linear(ch, inner)
        self.transformer_blocks = nn.ModuleList(
            [_Block3D(inner, heads, dim_head, context_dim, ip_dim, ip_weight) for _ in range(depth)]
        )
        self.proj_out = nn.Linear(ch, inner)  # (the release's shapes: in and inner width are equal)

    def forward(self, x, context, num_frames):
        b, c, h, w = x.shape
        y = self.proj_in(self.norm(x).flatten(2).transpose(1, 2))
        for blk in self.transformer_blocks:
            y = blk(y, context, num_frames)
        return self.proj_out(y).transpose(1, 2).reshape(b, c, h, w) + x


class _ResBlock(nn.Module):
    def __init__(self, cin: int, emb: int, cout: int):
        super().__init__()
        self.in_layers = nn.Sequential(nn.GroupNorm(32, cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb, cout))
        self.out_layers = nn.Sequential(
            nn.GroupNorm(32, cout), nn.SiLU(), nn.Dropout(0.0), nn.Conv2d(cout, cout, 3, padding=1)
        )
        self.skip_connection = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x, emb):
        h = self.in_layers(x) + self.emb_layers(emb).to(x.dtype)[..., None, None]
        return self.skip_connection(x) + self.out_layers(h)


class _Down(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.op = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class _Up(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class _Seq(nn.ModuleList):
    def forward(self, x, emb, context, num_frames):
        for layer in self:
            if isinstance(layer, _ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, _Transformer):
                x = layer(x, context, num_frames)
            else:
                x = layer(x)
        return x


class _PerceiverAttention(nn.Module):
    def __init__(self, dim: int, dim_head: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_kv = nn.Linear(dim, 2 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim, bias=False)

    def forward(self, x, latents):
        x, latents = self.norm1(x), self.norm2(latents)
        k, v = self.to_kv(torch.cat([x, latents], 1)).chunk(2, -1)
        out = F.scaled_dot_product_attention(
            _heads(self.to_q(latents), self.heads), _heads(k, self.heads), _heads(v, self.heads)
        )
        return self.to_out(_merge(out))


class _Resampler(nn.Module):
    """``ip_dim`` learned queries attend (4 perceiver layers) to the CLIP image tokens → context-width tokens."""

    def __init__(
        self, dim: int, num_queries: int, embedding_dim: int = 1280, depth: int = 4, heads: int = 12
    ):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, num_queries, dim) / dim**0.5)
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, dim)
        self.norm_out = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    _PerceiverAttention(dim, 64, heads),
                    nn.Sequential(
                        nn.LayerNorm(dim),
                        nn.Linear(dim, 4 * dim, bias=False),
                        nn.GELU(),
                        nn.Linear(4 * dim, dim, bias=False),
                    ),
                ]
            )
            for _ in range(depth)
        )

    def forward(self, x):
        lat = self.latents.expand(x.shape[0], -1, -1)
        x = self.proj_in(x)
        for attn, ff in self.layers:
            lat = attn(x, lat) + lat
            lat = ff(lat) + lat
        return self.norm_out(self.proj_out(lat))


_SUPPORTED = {"dims": 2, "use_scale_shift_norm": False, "resblock_updown": False, "conv_resample": True}


class MultiViewUNet(nn.Module):
    """MVDream / ImageDream's UNet with the port's config keys and parameter names (``forward`` as the port's:
    ``x, timesteps, context, num_frames, camera, ip, ip_img``)."""

    def __init__(
        self,
        in_channels: int = 4,
        out_channels: int = 4,
        model_channels: int = 320,
        num_res_blocks: int = 2,
        attention_resolutions=(4, 2, 1),
        channel_mult=(1, 2, 4, 4),
        num_head_channels: int = 64,
        transformer_depth: int = 1,
        context_dim: int = 1024,
        camera_dim: int | None = 16,
        ip_dim: int = 0,
        ip_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__()
        for k, want in _SUPPORTED.items():
            if k in kwargs and kwargs[k] != want:
                raise ValueError(f"MultiViewUNet implements the released configuration only ({k}={want!r})")
        if kwargs.get("num_classes") is not None or kwargs.get("num_attention_blocks") is not None:
            raise ValueError(
                "MultiViewUNet implements the released configuration only (no classes/attention masks)"
            )
        if num_head_channels in (None, -1):
            raise ValueError("MultiViewUNet needs num_head_channels (64 in the released configs)")
        self.config = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "model_channels": model_channels,
            "num_res_blocks": num_res_blocks,
            "attention_resolutions": list(attention_resolutions),
            "channel_mult": list(channel_mult),
            "num_head_channels": num_head_channels,
            "transformer_depth": transformer_depth,
            "context_dim": context_dim,
            "camera_dim": camera_dim,
            "ip_dim": ip_dim,
            "ip_weight": ip_weight,
        }
        self.model_channels, self.ip_dim = model_channels, ip_dim
        emb = 4 * model_channels
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        if camera_dim is not None:
            self.camera_embed = nn.Sequential(nn.Linear(camera_dim, emb), nn.SiLU(), nn.Linear(emb, emb))
        if ip_dim > 0:
            self.image_embed = _Resampler(context_dim, ip_dim)

        def attn(ch):
            h = ch // num_head_channels
            return _Transformer(ch, h, num_head_channels, context_dim, transformer_depth, ip_dim, ip_weight)

        self.input_blocks = nn.ModuleList([_Seq([nn.Conv2d(in_channels, model_channels, 3, padding=1)])])
        chans, ch, ds = [model_channels], model_channels, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [_ResBlock(ch, emb, mult * model_channels)]
                ch = mult * model_channels
                if ds in attention_resolutions:
                    layers.append(attn(ch))
                self.input_blocks.append(_Seq(layers))
                chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(_Seq([_Down(ch)]))
                chans.append(ch)
                ds *= 2
        self.middle_block = _Seq([_ResBlock(ch, emb, ch), attn(ch), _ResBlock(ch, emb, ch)])
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [_ResBlock(ch + chans.pop(), emb, mult * model_channels)]
                ch = mult * model_channels
                if ds in attention_resolutions:
                    layers.append(attn(ch))
                if level and i == num_res_blocks:
                    layers.append(_Up(ch))
                    ds //= 2
                self.output_blocks.append(_Seq(layers))
        self.out = nn.Sequential(
            nn.GroupNorm(32, ch), nn.SiLU(), nn.Conv2d(model_channels, out_channels, 3, padding=1)
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MultiViewUNet:
        return cls(**{k: v for k, v in config.items() if not k.startswith("_")})

    def forward(self, x, timesteps=None, context=None, num_frames=1, camera=None, ip=None, ip_img=None, **kw):
        if x.shape[0] % num_frames:
            raise ValueError("the batch must be a multiple of num_frames")
        emb = self.time_embed(_timestep_embedding(timesteps, self.model_channels).to(x.dtype))
        if camera is not None:
            emb = emb + self.camera_embed(camera.to(x.dtype))
        if self.ip_dim > 0:
            x = x.clone()
            x[num_frames - 1 :: num_frames] = ip_img.to(
                x.dtype
            )  # the reference view's latent in the last frame
            context = torch.cat([context, self.image_embed(ip.to(x.dtype))], 1)
        skips, h = [], x
        for blk in self.input_blocks:
            h = blk(h, emb, context, num_frames)
            skips.append(h)
        h = self.middle_block(h, emb, context, num_frames)
        for blk in self.output_blocks:
            h = blk(torch.cat([h, skips.pop()], 1), emb, context, num_frames)
        return self.out(h)
