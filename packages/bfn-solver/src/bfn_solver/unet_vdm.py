"""The image network of the nnaisense CIFAR-10 BFN checkpoints (``cifar10_256c_ema.pt``), re-implemented so that
the official state dict loads key for key (after dropping its ``net.`` prefix).

Architecture (Graves et al., 2023, Sec. 7.2; the VDM U-Net of Kingma et al., 2021, without down-sampling):
Fourier features of the input mean, ``n_blocks`` residual blocks down and ``n_blocks + 1`` up at full resolution
with skip connections, one attention block in the middle, a sinusoidal embedding of ``1000 (t + 0.001)`` that
conditions every residual block, and a final linear map of ``[input, features]`` to the noise prediction.

Layout follows the official code: images are channels-last (B, H, W, C) with values in [−1, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FourierImageInputAdapter", "OutputAdapter", "UNetVDM"]


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[sin, cos] of 1000 t times the inverse timescales 10^(−4 i/(dim/2 − 1)), i = 0..dim/2 − 1 (VDM)."""
    half = dim // 2
    inv = torch.logspace(0.0, -4.0, half, device=t.device, dtype=torch.float32)
    arg = (1000.0 * t.float())[:, None] * inv[None, :]
    return torch.cat([arg.sin(), arg.cos()], dim=1)


class FourierImageInputAdapter(nn.Module):
    """Flattens the image to (B, H·W, C). The Fourier position features are kept as the official (persistent)
    buffer ``pos_feats`` so the checkpoint loads; with add_pos_feats=False (CIFAR-10) they are not used."""

    def __init__(
        self,
        input_channels: int = 3,
        input_shape: tuple[int, int] = (32, 32),
        n_freq_bands: int = 64,
        output_height: int = 3,
        add_pos_feats: bool = False,
        add_mask: bool = False,
    ) -> None:
        super().__init__()
        self.add_pos_feats = add_pos_feats
        self.add_mask = add_mask
        h, w = input_shape
        xs = torch.linspace(-1.0, 1.0, h)
        ys = torch.linspace(-1.0, 1.0, w)
        pos = torch.stack(torch.meshgrid(xs, ys, indexing="ij"), dim=-1).reshape(-1, 2)  # (H·W, 2)
        bands = torch.stack(
            [torch.linspace(1.0, h / 2, n_freq_bands), torch.linspace(1.0, w / 2, n_freq_bands)]
        )
        vals = math.pi * (pos[:, :, None] * bands[None]).reshape(pos.shape[0], -1)
        self.register_buffer("pos_feats", torch.cat([vals.sin(), vals.cos(), pos], dim=-1))
        height = input_channels + (1 if add_mask else 0) + (self.pos_feats.shape[-1] if add_pos_feats else 0)
        self.output_projection = nn.Linear(height, output_height) if output_height != height else None

    def forward(self, img: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = img.shape[0]
        feats = [img.reshape(b, -1, img.shape[-1])]
        if self.add_mask:
            feats.append(
                (2 * t.float().reshape(b, -1)[:, :1] - 1)[:, None, :].expand(-1, feats[0].shape[1], -1)
            )
        if self.add_pos_feats:
            feats.append(self.pos_feats.expand(b, -1, -1))
        out = torch.cat(feats, dim=-1)
        return out if self.output_projection is None else self.output_projection(out)


class OutputAdapter(nn.Module):
    """Linear map of per-pixel features to (B, H·W, output_channels, output_height)."""

    def __init__(self, input_height: int, output_channels: int, output_height: int) -> None:
        super().__init__()
        self.output_channels = output_channels
        self.output_height = output_height
        self.output_projection = nn.Linear(input_height, output_channels * output_height)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.output_projection(x)
        return out.reshape(out.shape[0], -1, self.output_channels, self.output_height)


class ResnetBlock(nn.Module):
    def __init__(
        self, ch_in: int, ch_out: int, condition_dim: int, dropout_prob: float, norm_groups: int
    ) -> None:
        super().__init__()
        self.net1 = nn.Sequential(
            nn.GroupNorm(norm_groups, ch_in), nn.SiLU(), nn.Conv2d(ch_in, ch_out, 3, padding=1)
        )
        self.cond_proj = _zero(nn.Linear(condition_dim, ch_out, bias=False))
        self.net2 = nn.Sequential(
            nn.GroupNorm(norm_groups, ch_out),
            nn.SiLU(),
            nn.Dropout(dropout_prob),
            _zero(nn.Conv2d(ch_out, ch_out, 3, padding=1)),
        )
        self.skip_conv = nn.Conv2d(ch_in, ch_out, 1) if ch_in != ch_out else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.net1(x) + self.cond_proj(cond)[:, :, None, None]
        h = self.net2(h)
        return (x if self.skip_conv is None else self.skip_conv(x)) + h


class _Attention(nn.Module):
    """Multi-head self-attention over pixels from a (B, 3C, H, W) qkv map (q, k, v are the channel thirds;
    head j owns channels j·C/n .. (j+1)·C/n of each)."""

    def __init__(self, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads

    def forward(self, qkv: torch.Tensor) -> torch.Tensor:
        b, c3, *spatial = qkv.shape
        c = c3 // 3
        q, k, v = (
            u.reshape(b, self.n_heads, c // self.n_heads, -1).transpose(-1, -2) for u in qkv.chunk(3, 1)
        )
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, T, ch), scale 1/sqrt(ch)
        return out.transpose(-1, -2).reshape(b, c, *spatial)


class AttentionBlock(nn.Module):
    def __init__(self, n_heads: int, n_channels: int, norm_groups: int) -> None:
        super().__init__()
        if n_channels % n_heads:
            raise ValueError(f"n_channels={n_channels} is not divisible by n_heads={n_heads}")
        self.layers = nn.Sequential(
            nn.GroupNorm(norm_groups, n_channels),
            nn.Conv2d(n_channels, 3 * n_channels, 1),
            _Attention(n_heads),
            _zero(nn.Conv2d(n_channels, n_channels, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x) + x


class UpDownBlock(nn.Module):
    def __init__(self, resnet_block: ResnetBlock, attention_block: AttentionBlock | None) -> None:
        super().__init__()
        self.resnet_block = resnet_block
        self.attention_block = attention_block

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = self.resnet_block(x, cond)
        return x if self.attention_block is None else self.attention_block(x)


class UNetVDM(nn.Module):
    """``forward(data (B, H, W, C), t) -> (B, H·W, C, 1)`` as the official network; ``t`` may be (B,) or have the
    data's shape (the official sampler's), only its first entry per row is used."""

    def __init__(
        self,
        input_adapter: nn.Module,
        output_adapter: nn.Module,
        embedding_dim: int = 128,
        n_blocks: int = 32,
        n_attention_heads: int = 1,
        dropout_prob: float = 0.1,
        norm_groups: int = 32,
        input_channels: int = 3,
        use_fourier_features: bool = True,
        attention_everywhere: bool = False,
        image_size: int = 32,
    ) -> None:
        super().__init__()
        self.input_adapter = input_adapter
        self.output_adapter = output_adapter
        self.embedding_dim = embedding_dim
        self.input_channels = input_channels
        self.image_size = image_size
        self.use_fourier_features = use_fourier_features
        # Fourier features of the input at frequencies 2π·2^n, n = 5, 6 (sin and cos): 4 maps per channel.
        self.register_buffer("_fourier_exponents", torch.tensor([5.0, 6.0]), persistent=False)
        e = embedding_dim
        self.embed_conditioning = nn.Sequential(
            nn.Linear(e, 4 * e), nn.SiLU(), nn.Linear(4 * e, 4 * e), nn.SiLU()
        )
        in_ch = input_channels * (1 + 4) if use_fourier_features else input_channels
        self.conv_in = nn.Conv2d(in_ch, e, 3, padding=1)

        def block(ch_in: int) -> UpDownBlock:
            attn = AttentionBlock(n_attention_heads, e, norm_groups) if attention_everywhere else None
            return UpDownBlock(ResnetBlock(ch_in, e, 4 * e, dropout_prob, norm_groups), attn)

        self.down_blocks = nn.ModuleList(block(e) for _ in range(n_blocks))
        self.mid_resnet_block_1 = ResnetBlock(e, e, 4 * e, dropout_prob, norm_groups)
        self.mid_attn_block = AttentionBlock(n_attention_heads, e, norm_groups)
        self.mid_resnet_block_2 = ResnetBlock(e, e, 4 * e, dropout_prob, norm_groups)
        self.up_blocks = nn.ModuleList(block(2 * e) for _ in range(n_blocks + 1))
        self.conv_out = nn.Sequential(
            nn.GroupNorm(norm_groups, e), nn.SiLU(), _zero(nn.Conv2d(e, e, 3, padding=1))
        )

    def _fourier(self, x: torch.Tensor) -> torch.Tensor:
        freqs = (2.0**self._fourier_exponents * 2 * math.pi).to(x.dtype)
        f = (freqs.reshape(1, -1, 1, 1, 1) * x.unsqueeze(1)).flatten(1, 2)  # (B, F·C, H, W)
        return torch.cat([f.sin(), f.cos()], dim=1)

    def forward(self, data: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = data.shape[0]
        flat = self.input_adapter(data, t)
        x = flat.reshape(b, self.image_size, self.image_size, self.input_channels)
        t_row = t.reshape(b, -1)[:, 0]
        cond = self.embed_conditioning(timestep_embedding(t_row + 0.001, self.embedding_dim).to(x.dtype))
        h = x.permute(0, 3, 1, 2)
        if self.use_fourier_features:
            h = torch.cat([h, self._fourier(h)], dim=1)
        h = self.conv_in(h)
        hs = []
        for blk in self.down_blocks:
            hs.append(h)
            h = blk(h, cond)
        hs.append(h)
        h = self.mid_resnet_block_2(self.mid_attn_block(self.mid_resnet_block_1(h, cond)), cond)
        for blk in self.up_blocks:
            h = blk(torch.cat([h, hs.pop()], dim=1), cond)
        out = self.conv_out(h).permute(0, 2, 3, 1).reshape(b, -1, self.embedding_dim)
        return self.output_adapter(torch.cat([x.reshape(b, -1, self.input_channels), out], dim=-1))
