"""Latent statistics for Analytic-Init: E[x₀] and tr(Cov[x₀])/d of a model's VAE latents over a set of videos.

The paper's Analytic-Init (Sec. 4.2, Eq. 5) needs two dataset statistics of the clean latent x₀: its element-wise mean
E[x₀] (a tensor the shape of one video latent, not conditioned on the input image) and the scalar tr(Cov[x₀])/d =
mean(E[x₀²] − E[x₀]²). Both are tied to one resolution and frame count: `LatentStats` records them and refuses to be
used at another size, with a message that says how to make matching ones (the official release gives no estimation
script and silently mis-broadcasts at other sizes).

`RunningMoments` accumulates E[x] and E[x²] in float64 one batch at a time, so any number of videos streams through
the VAE in constant memory; `estimate_latent_stats` does that for a diffusers pipeline.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gen_common.checkpoint import CheckpointError, load_state_dict, load_torch_file, save_state_dict
from gen_common.cli import progress as progress_bar

__all__ = ["LatentStats", "RunningMoments", "encode_video_latents", "estimate_latent_stats"]

_FORMAT = "i2v_leak.LatentStats/1"
LAYOUTS = (
    "BFCHW",
    "BCFHW",
)  # SVD's latent layout; I2VGen-XL's and the lvdm models' (DynamiCrafter, VideoCrafter)


@dataclass(frozen=True, eq=False)
class LatentStats:
    """E[x₀] and tr(Cov[x₀])/d of a model's (scaled) VAE latents.

    ``mean`` is frame-major, (F, C, h, w), in the latent space the diffusion model works in (the VAE's sample times
    its ``scaling_factor``). ``height``/``width`` are the pixel resolution and ``num_frames`` the clip length the
    statistics were estimated at; ``count`` is how many clips went in.
    """

    mean: torch.Tensor
    tr_cov_over_d: float
    height: int | None = None
    width: int | None = None
    num_frames: int | None = None
    count: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.mean, torch.Tensor):
            object.__setattr__(self, "mean", torch.as_tensor(self.mean))
        tr = float(self.tr_cov_over_d)
        if not math.isfinite(tr) or tr < 0:
            raise ValueError(f"tr_cov_over_d must be finite and >= 0, got {tr}")
        object.__setattr__(self, "tr_cov_over_d", tr)
        if not torch.isfinite(self.mean).all():
            raise ValueError("the mean latent has NaN/inf entries; re-estimate the statistics")

    # -- shapes -------------------------------------------------------------------------------------------------
    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self.mean.shape)

    def describe(self) -> str:
        size = f"{self.height}×{self.width}" if self.height else "an unrecorded resolution"
        frames = f"{self.num_frames} frames" if self.num_frames else "an unrecorded frame count"
        return f"{size}, {frames} (latent {tuple(self.mean.shape)})"

    def check(
        self, height: int | None = None, width: int | None = None, num_frames: int | None = None
    ) -> None:
        """Raise ValueError when these statistics were estimated at another resolution or frame count."""
        bad = []
        if height is not None and self.height is not None and int(height) != self.height:
            bad.append("height")
        if width is not None and self.width is not None and int(width) != self.width:
            bad.append("width")
        pooled = self.mean.ndim == 4 and self.mean.shape[0] == 1
        other_f = (
            num_frames is not None and self.num_frames is not None and int(num_frames) != self.num_frames
        )
        if other_f and not pooled:
            bad.append("frames")
        if bad:
            h = height if height is not None else self.height
            w = width if width is not None else self.width
            f = num_frames if num_frames is not None else self.num_frames
            raise ValueError(
                f"these latent statistics were estimated at {self.describe()}, but this run asks for {h}×{w} "
                f"with {f} frames: Analytic-Init needs statistics at the same size. Estimate new ones with "
                f"`i2v-leak stats --height {h} --width {w} --num-frames {f} ...` (or estimate_latent_stats("
                f"..., height={h}, width={w}, num_frames={f}))"
                + (
                    "; for another frame count only, stats.frame_pooled() also works"
                    if bad == ["frames"]
                    else ""
                )
            )

    def mean_for(self, shape: tuple[int, ...] | torch.Size, layout: str = "BFCHW") -> torch.Tensor:
        """E[x₀] arranged and broadcast to a batch of latents of ``shape`` in ``layout`` ("BFCHW" for SVD,
        "BCFHW" for I2VGen-XL); any other tensor shape broadcasts as is."""
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}: use one of {LAYOUTS}")
        m = self.mean
        if m.ndim == 4 and len(shape) == 5:
            if layout == "BCFHW":
                m = m.permute(1, 0, 2, 3)
            c_dim, f_dim = (2, 1) if layout == "BFCHW" else (1, 2)
            want = (shape[f_dim], shape[c_dim], shape[3], shape[4])
            have = (self.mean.shape[0], *self.mean.shape[1:])
            if have[1:] != want[1:] or have[0] not in (1, want[0]):
                raise ValueError(
                    f"the statistics' latent (frames, channels, h, w) = {have} does not fit latents {want} "
                    f"({layout}); they were estimated at {self.describe()}: estimate statistics at this size"
                )
        try:
            return torch.broadcast_to(m, tuple(shape))
        except RuntimeError as exc:
            raise ValueError(
                f"the mean latent {tuple(self.mean.shape)} does not broadcast to {tuple(shape)}; the statistics "
                f"were estimated at {self.describe()}"
            ) from exc

    def frame_pooled(self) -> LatentStats:
        """One mean for all frames (usable at any frame count), with tr(Cov)/d raised by the spread of the
        per-frame means around it, so that N(pooled mean, σ²) is still the best isotropic Gaussian with that mean:
        E‖x − m̄‖²/d = tr(Cov)/d + mean_f ‖m_f − m̄‖²/d."""
        if self.mean.ndim != 4:
            raise ValueError("frame pooling needs a (frames, channels, h, w) mean")
        pooled = self.mean.double().mean(0, keepdim=True)
        spread = float(((self.mean.double() - pooled) ** 2).mean())
        return LatentStats(
            pooled.to(self.mean.dtype),
            self.tr_cov_over_d + spread,
            self.height,
            self.width,
            self.num_frames,
            self.count,
            {**self.meta, "frame_pooled": True},
        )

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> LatentStats:
        return LatentStats(
            self.mean.to(device=device, dtype=dtype),
            self.tr_cov_over_d,
            self.height,
            self.width,
            self.num_frames,
            self.count,
            dict(self.meta),
        )

    # -- files --------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write a ``.safetensors`` file: the mean tensor, the scalar and the size it belongs to as metadata."""
        p = Path(path)
        if p.suffix != ".safetensors":
            raise ValueError(f"save latent statistics as .safetensors, got {p.name}")
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} exists; pass overwrite=True (--overwrite) to replace it")
        p.parent.mkdir(parents=True, exist_ok=True)
        metadata = {
            "format": _FORMAT,
            "tr_cov_over_d": repr(self.tr_cov_over_d),
            "height": str(self.height or ""),
            "width": str(self.width or ""),
            "num_frames": str(self.num_frames or ""),
            "count": str(self.count),
            "meta": json.dumps(self.meta),
        }
        return save_state_dict({"mean": self.mean.detach().float().cpu().contiguous()}, p, metadata=metadata)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, layout: str | None = None) -> LatentStats:
        """Read statistics saved by `save`, or an official Analytic-Init ``.pt`` file (keys ``Expectation_X0`` /
        ``Tr_Cov_d`` of the lvdm models, or ``Expectation_x_0`` / ``trCov_d`` of SVD), read with
        ``weights_only=True``. Official lvdm means are (C, F, h, w) (``layout="BCFHW"``, the default for those
        keys) and are stored frame-major here; their resolution is taken as 8× the latent size."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"no statistics file at {p}; make one with `i2v-leak stats`")
        if p.suffix == ".safetensors":
            from safetensors import safe_open

            try:
                with safe_open(str(p), framework="pt") as fh:
                    md = fh.metadata() or {}
            except Exception as exc:  # safetensors raises its own error type for a damaged header
                raise CheckpointError(f"{p} is not a readable .safetensors file ({exc})") from exc
            if md.get("format") != _FORMAT:
                raise CheckpointError(f"{p} is not an i2v-leak statistics file (format {md.get('format')!r})")
            mean = load_state_dict(p)["mean"]

            def opt(k: str) -> int | None:
                return int(md[k]) if md.get(k) else None

            return cls(
                mean,
                float(md["tr_cov_over_d"]),
                opt("height"),
                opt("width"),
                opt("num_frames"),
                int(md.get("count") or 0),
                json.loads(md.get("meta") or "{}"),
            )
        sd = _load_official(p)
        for mk, tk, default_layout in (
            ("Expectation_X0", "Tr_Cov_d", "BCFHW"),
            ("Expectation_x_0", "trCov_d", "BFCHW"),
        ):
            if mk in sd and tk in sd:
                mean = sd[mk].float()
                while mean.ndim > 4 and mean.shape[0] == 1:
                    mean = mean[0]
                if mean.ndim != 4:
                    raise CheckpointError(f"{p}: expected a 4-d mean latent, got shape {tuple(sd[mk].shape)}")
                if (layout or default_layout) == "BCFHW":
                    mean = mean.permute(1, 0, 2, 3).contiguous()
                f, _, h, w = mean.shape
                return cls(mean, float(sd[tk]), 8 * h, 8 * w, f, 0, {"source": f"official:{p.name}"})
        raise CheckpointError(
            f"{p} has none of the official Analytic-Init keys (Expectation_X0/Tr_Cov_d or "
            f"Expectation_x_0/trCov_d); found {sorted(sd)[:6]}"
        )


def _load_official(p: Path) -> dict[str, Any]:
    """An official Analytic-Init file: a dict of a tensor and a number, read with ``weights_only=True``
    (so no code runs; gen_common.load_state_dict wants tensors only)."""
    obj = load_torch_file(p)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{p} does not hold a dict of statistics")
    return obj


class RunningMoments:
    """Streaming element-wise E[x] and E[x²] over samples of a fixed shape (float64 sums; Chan-style merging is
    unnecessary at this precision for the sizes involved)."""

    def __init__(self) -> None:
        self.count = 0
        self._sum: torch.Tensor | None = None
        self._sumsq: torch.Tensor | None = None

    def update(self, batch: torch.Tensor) -> None:
        """Add a batch of samples stacked along dim 0."""
        x = batch.detach().to(torch.float64)
        if not torch.isfinite(x).all():
            raise ValueError("a latent batch has NaN/inf values; check the videos and the VAE dtype")
        s, ss = x.sum(0), (x * x).sum(0)
        if self._sum is None:
            self._sum, self._sumsq = s, ss
        else:
            if s.shape != self._sum.shape:
                raise ValueError(
                    f"latent shape changed from {tuple(self._sum.shape)} to {tuple(s.shape)}; every clip must "
                    "have the same resolution and frame count"
                )
            self._sum += s
            self._sumsq += ss
        self.count += x.shape[0]

    @property
    def mean(self) -> torch.Tensor:
        if self._sum is None:
            raise ValueError("no samples were added")
        return self._sum / self.count

    @property
    def second_moment(self) -> torch.Tensor:
        if self._sumsq is None:
            raise ValueError("no samples were added")
        return self._sumsq / self.count

    def tr_cov_over_d(self) -> float:
        """mean(E[x²] − E[x]²): the average per-element variance (population form, as in the paper)."""
        var = (self.second_moment - self.mean**2).clamp(min=0)
        return float(var.mean())

    def stats(self, **kwargs: Any) -> LatentStats:
        return LatentStats(self.mean.float(), self.tr_cov_over_d(), count=self.count, **kwargs)


@torch.no_grad()
def encode_video_latents(
    vae: Any,
    video: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    posterior: str = "sample",
    chunk: int = 16,
) -> torch.Tensor:
    """Scaled VAE latents (B, F, C, h, w) of videos (B, F, 3, H, W) in [−1, 1], encoded frame by frame as the
    image-to-video models do. ``posterior="sample"`` draws from the VAE posterior like training does."""
    if video.ndim != 5 or video.shape[2] != 3:
        raise ValueError(f"expected videos (B, F, 3, H, W), got {tuple(video.shape)}")
    b, f = video.shape[:2]
    dev = next(vae.parameters()).device
    dtype = next(vae.parameters()).dtype
    frames = video.reshape(b * f, *video.shape[2:])
    out = []
    for i in range(0, frames.shape[0], chunk):
        dist = vae.encode(frames[i : i + chunk].to(dev, dtype)).latent_dist
        if posterior == "sample":
            z = dist.sample(generator=generator)
        elif posterior == "mode":
            z = dist.mode()
        else:
            raise ValueError(f"posterior must be 'sample' or 'mode', got {posterior!r}")
        out.append(z.float())
    z = torch.cat(out) * float(vae.config.scaling_factor)
    return z.reshape(b, f, *z.shape[1:])


def estimate_latent_stats(
    vae_or_pipe: Any,
    videos: Iterable[torch.Tensor],
    *,
    height: int,
    width: int,
    num_frames: int,
    generator: torch.Generator | None = None,
    posterior: str = "sample",
    max_videos: int | None = None,
    progress: bool | None = None,
    total: int | None = None,
    meta: dict[str, Any] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> LatentStats:
    """Analytic-Init statistics of a model's latents over ``videos`` (Sec. 4.2): streams each clip through the
    VAE, accumulating E[x₀] and E[x₀²] in float64, and returns `LatentStats` recording the size.

    ``videos`` yields tensors (F, 3, H, W) or (B, F, 3, H, W) in [−1, 1] at exactly ``height``×``width`` and
    ``num_frames`` frames (use `i2v_leak.video_io.iter_video_clips` to read a folder); ``vae_or_pipe`` is a
    diffusers VAE or a pipeline with a ``.vae``.
    """
    vae = getattr(vae_or_pipe, "vae", vae_or_pipe)
    acc = RunningMoments()
    seen = 0
    bar = progress_bar(total=total or max_videos, desc="latent stats", enabled=progress)
    try:
        for clip in videos:
            v = clip if clip.ndim == 5 else clip.unsqueeze(0)
            if max_videos is not None:
                if seen >= max_videos:
                    break
                v = v[: max_videos - seen]  # a batch may cross the limit: count clips, not batches
            if tuple(v.shape[1:]) != (num_frames, 3, height, width):
                raise ValueError(
                    f"clip of shape {tuple(v.shape[1:])} given, expected ({num_frames}, 3, {height}, {width}); "
                    "resize/trim clips to the size the statistics are for"
                )
            acc.update(encode_video_latents(vae, v, generator=generator, posterior=posterior))
            seen += v.shape[0]
            bar.update(v.shape[0])
            if on_batch is not None:
                on_batch(seen)
    finally:
        bar.close()
    if acc.count == 0:
        raise ValueError(
            "no videos were given; point to a folder with clips (GIF, mp4, or folders of frames)"
        )
    return acc.stats(
        height=height,
        width=width,
        num_frames=num_frames,
        meta={"posterior": posterior, "scaling_factor": float(vae.config.scaling_factor), **(meta or {})},
    )
