"""What each `i2v-leak` command does, as library functions: one frozen config and one function per command.

The CLI (`i2v_leak.cli`), the tour's demo and a notebook all call these::

    from i2v_leak.runs import GenerateRun, Generation, generate
    from gen_common.cli import RunContext
    run = GenerateRun("cat.png", Generation(stats="runs/stats/latent_stats.safetensors"))
    report = generate(run, RunContext(out="runs/gen"))

Every command runs offline on ``model="tiny"`` (toy pipelines built from configs) and takes a local diffusers folder
or a hub id (when online) for real models. Files are written only through ``ctx.output(name)`` (the output-folder
policy of `gen_common.cli.RunContext`); torch is imported inside the functions so that ``--help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gen_common.cli import RunContext, arg
from gen_common.config import TrainConfig

__all__ = [
    "BenchReport",
    "BenchRun",
    "ClipSize",
    "CompareReport",
    "CompareRun",
    "GenerateReport",
    "GenerateRun",
    "Generation",
    "Model",
    "PresetsReport",
    "PresetsRun",
    "StatsReport",
    "StatsRun",
    "TrainReport",
    "TrainRun",
    "bench",
    "compare",
    "generate",
    "presets",
    "stats",
    "train",
]

TINY_SIZE = {"height": 32, "width": 32, "num_frames": 2}
SVD_LR = 3e-5  # the SVD preset's fine-tuning learning rate (i2v_leak.presets imports torch; a test keeps them equal)
STATS_FILE = "latent_stats.safetensors"
UNET_FILES = ("unet/config.json", "unet/diffusion_pytorch_model.safetensors")


@dataclass(frozen=True)
class Model:
    """Which stock pipeline, from where, and how it is loaded."""

    pipeline: Literal["svd", "i2vgenxl"] = arg("svd", help="which diffusers pipeline")
    model: str = arg("tiny", help="'tiny' (offline toy model), a diffusers folder, or a hub id")
    dtype: str | None = arg(None, help="float32, bfloat16 or float16 (default: bf16 on CUDA, else fp32)")
    variant: str | None = arg(None, help="weight-file variant to load, e.g. fp16")
    cpu_offload: bool = arg(False, help="accelerate model CPU offload (CUDA only)")
    vae_slicing: bool = arg(False, help="decode one frame at a time (I2VGen-XL's VAE)")
    vae_tiling: bool = arg(False, help="decode in tiles (I2VGen-XL's VAE)")

    def load(self, ctx: RunContext) -> Any:
        from gen_common.cli import progress_enabled
        from i2v_leak.loading import LoadOptions, load_pipeline

        opts = LoadOptions(
            dtype=self.dtype,
            variant=self.variant,
            cpu_offload=self.cpu_offload,
            vae_slicing=self.vae_slicing,
            vae_tiling=self.vae_tiling,
            seed=ctx.seed,
        )
        pipe = load_pipeline(self.pipeline, self.model, ctx.device, opts)
        pipe.set_progress_bar_config(disable=not progress_enabled(ctx.progress))
        return pipe


@dataclass(frozen=True)
class ClipSize:
    """Clip size (default: the preset's; 32×32, 2 frames for --model tiny)."""

    height: int | None = arg(None, help="frame height in px, a multiple of 8", min=8)
    width: int | None = arg(None, help="frame width in px, a multiple of 8", min=8)
    num_frames: int | None = arg(None, help="frames per clip", min=2)

    def resolve(self, model: Model) -> tuple[int, int, int]:
        if model.model == "tiny":
            base = TINY_SIZE
        else:
            from i2v_leak.presets import get_preset

            base = vars(get_preset(model.pipeline))
        h, w = self.height or base["height"], self.width or base["width"]
        for name, v in (("height", h), ("width", w)):
            if v % 8:
                raise ValueError(f"--{name} must be a multiple of 8, got {v}")
        return int(h), int(w), int(self.num_frames or base["num_frames"])


def _clips(
    videos: str, num_synthetic: int, stride: int, size: tuple[int, int, int], seed: int
) -> tuple[Any, int]:
    """An iterator of clips in [−1, 1] and their number."""
    import torch

    from i2v_leak.video_io import iter_video_clips, list_videos, synthetic_clips

    h, w, f = size
    gen = torch.Generator().manual_seed(seed)
    if videos == "synthetic":
        return iter(synthetic_clips(num_synthetic, f, h, w, gen)), num_synthetic
    paths = list_videos(videos)
    if not paths:
        raise ValueError(f"no clips in {videos}: expected GIFs, mp4/webm/mov files or folders of frames")
    return iter_video_clips(paths, height=h, width=w, num_frames=f, stride=stride, generator=gen), len(paths)


# ------------------------------------------------------------------------------------------------------ stats


@dataclass(frozen=True)
class StatsRun:
    """Estimate Analytic-Init latent statistics from a folder of videos (latent_stats.safetensors)."""

    videos: str = arg(help="folder of clips (GIF, mp4/webm/mov, folders of frames) or 'synthetic'")
    model: Model = dataclasses.field(default_factory=Model)
    size: ClipSize = dataclasses.field(default_factory=ClipSize)
    num_synthetic: int = arg(16, help="clips made for --videos synthetic", min=1)
    stride: int = arg(1, help="take every stride-th frame", min=1)
    max_videos: int | None = arg(None, help="use at most this many clips", min=1)
    posterior: Literal["sample", "mode"] = arg("sample", help="VAE posterior sample or mode")


@dataclass
class StatsReport:
    stats: str | None  # the file written (None without an output folder)
    count: int
    height: int
    width: int
    num_frames: int
    latent_shape: list[int]
    tr_cov_over_d: float
    mean_abs_mean: float
    mean_sq_mean: float


def stats(run: StatsRun, ctx: RunContext | None = None) -> StatsReport:
    """`i2v_leak.stats.estimate_latent_stats` over the clips; saved to OUT/latent_stats.safetensors."""
    import torch

    from i2v_leak.stats import estimate_latent_stats

    ctx = RunContext.of(ctx)
    h, w, f = run.size.resolve(run.model)
    target = ctx.output(STATS_FILE) if ctx.out is not None else None  # refused before minutes of work
    pipe = run.model.load(ctx)
    clips, total = _clips(run.videos, run.num_synthetic, run.stride, (h, w, f), ctx.seed)
    result = estimate_latent_stats(
        pipe, clips, height=h, width=w, num_frames=f, generator=torch.Generator().manual_seed(ctx.seed),
        posterior=run.posterior, max_videos=run.max_videos, progress=ctx.progress, total=total,
        meta={"pipeline": run.model.pipeline, "model": run.model.model, "videos": str(run.videos)},
    )  # fmt: skip
    if target is not None:
        result.save(target, overwrite=True)  # ctx.output applied the overwrite policy
    return StatsReport(
        str(target) if target is not None else None, result.count, h, w, f, list(result.latent_shape),
        result.tr_cov_over_d, float(result.mean.abs().mean()), float((result.mean**2).mean()),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------- generate / compare


@dataclass(frozen=True)
class Generation:
    """The sampler's settings (unset: the preset's)."""

    prompt: str = arg("", help="text prompt (I2VGen-XL)")
    preset: str | None = arg(
        None, help="settings preset (default: the pipeline's; svd-cil for the released CIL-SVD checkpoint)"
    )
    M: float | None = arg(None, help="start: σ_max for SVD, a timestep for I2VGen-XL (default: preset)", gt=0)
    stats: str | None = arg(None, help="latent statistics file for Analytic-Init (from `i2v-leak stats`)")
    steps: int | None = arg(None, help="sampling steps (default: preset; 4 for tiny)", min=1)
    guidance: float | None = arg(None, help="CFG scale (default: preset)", gt=0)
    fps: int | None = arg(None, help="fps conditioning (default: preset)", min=1)
    motion_bucket_id: int | None = arg(None, help="SVD motion bucket (default: preset)", min=0)
    noise_aug_strength: float | None = arg(
        None, help="SVD condition noise (default: the preset's, else the pipeline's 0.02)", min=0
    )
    eta: float | None = arg(None, help="DDIM η for I2VGen-XL (default: preset)", min=0)
    decode_chunk_size: int | None = arg(None, help="frames decoded at once (memory)", min=1)
    gif_fps: float = arg(6.0, help="frame rate of the written GIF", gt=0)


def _setup(
    image_spec: str, model: Model, size: ClipSize, g: Generation, ctx: RunContext
) -> tuple[Any, Any, Any, float | int]:
    """(wrapped pipeline, generation config, image, M); bad inputs fail before the model loads."""
    from i2v_leak.adapters import wrap_pipeline
    from i2v_leak.generation import GenerationConfig
    from i2v_leak.presets import get_preset
    from i2v_leak.stats import LatentStats
    from i2v_leak.video_io import load_image, synthetic_image

    h, w, f = size.resolve(model)
    preset = get_preset(g.preset or model.pipeline)
    if preset.family != get_preset(model.pipeline).family:
        raise ValueError(f"--preset {preset.name} is not a {model.pipeline} preset")
    M: float | int = g.M if g.M is not None else preset.M
    if model.pipeline == "i2vgenxl":
        if int(M) != M:
            raise ValueError(f"--M is a timestep for I2VGen-XL and must be an integer, got {M}")
        M = int(M)
    latent_stats = LatentStats.load(g.stats) if g.stats else None
    image = (
        synthetic_image(h, w, seed=ctx.seed) if image_spec == "synthetic" else load_image(image_spec, h, w)
    )
    cil = wrap_pipeline(model.load(ctx), M=M, stats=latent_stats)
    svd = model.pipeline == "svd"
    cfg = GenerationConfig(
        height=h,
        width=w,
        num_frames=f,
        steps=g.steps or (4 if model.model == "tiny" else preset.steps),
        guidance=g.guidance if g.guidance is not None else preset.guidance,
        fps=g.fps if g.fps is not None else preset.fps,
        motion_bucket_id=g.motion_bucket_id if g.motion_bucket_id is not None else preset.motion_bucket_id,
        noise_aug_strength=g.noise_aug_strength
        if g.noise_aug_strength is not None
        else preset.noise_aug_strength,
        eta=None if svd else (g.eta if g.eta is not None else preset.eta),
        prompt="" if svd else g.prompt,
        decode_chunk_size=g.decode_chunk_size,
    )
    return cil, cfg, image, M


@dataclass(frozen=True)
class GenerateRun:
    """Image-to-video with early start and Analytic-Init (or --baseline): video.gif and frames.png."""

    image: str = arg(help="conditional image file, or 'synthetic' for a generated one")
    generation: Generation = dataclasses.field(default_factory=Generation)
    model: Model = dataclasses.field(default_factory=Model)
    size: ClipSize = dataclasses.field(default_factory=ClipSize)
    baseline: bool = arg(False, help="run the stock pipeline instead (no fix)")


@dataclass
class GenerateReport:
    gif: str | None
    frames_png: str | None
    fixed: bool
    M: float | None
    analytic_init: bool
    steps: int
    shape: list[int]
    motion_score: float
    seconds: float
    fps: int | None = None  # the conditioning that ran (preset or flag)
    noise_aug_strength: float | None = None  # None: the pipeline's default


def generate(run: GenerateRun, ctx: RunContext | None = None) -> GenerateReport:
    from i2v_leak.generation import generate_video
    from i2v_leak.metrics import motion_score
    from i2v_leak.video_io import save_gif, save_strip

    ctx = RunContext.of(ctx)
    out = ctx.out is not None
    gif, png = (ctx.output("video.gif"), ctx.output("frames.png")) if out else (None, None)
    cil, cfg, image, M = _setup(run.image, run.model, run.size, run.generation, ctx)
    t0 = time.perf_counter()
    video = generate_video(cil, image, cfg, ctx.seed, fix=not run.baseline)
    seconds = time.perf_counter() - t0
    if out:
        save_gif(video, gif, fps=run.generation.gif_fps)
        label = "stock" if run.baseline else f"M={M:g}" + (" + Analytic-Init" if cil.stats else "")
        save_strip([(label, video)], png, title=f"{run.model.pipeline} ({run.model.model})")
    return GenerateReport(
        str(gif) if gif else None, str(png) if png else None, not run.baseline, None if run.baseline else M,
        bool(cil.stats) and not run.baseline, cfg.steps, list(video.shape), float(motion_score(video)[0]), seconds,
        cfg.fps, cfg.noise_aug_strength,
    )  # fmt: skip


@dataclass(frozen=True)
class CompareRun:
    """Baseline vs fixed on one image: compare.gif (side by side), compare.png (strips) and motion scores."""

    image: str = arg(help="conditional image file, or 'synthetic' for a generated one")
    generation: Generation = dataclasses.field(default_factory=Generation)
    model: Model = dataclasses.field(default_factory=Model)
    size: ClipSize = dataclasses.field(default_factory=ClipSize)
    raft: str | None = arg(None, help="local RAFT weights (.pth/.safetensors) for optical-flow motion")
    raft_size: Literal["small", "large"] = arg("small", help="which RAFT the weights are for")
    clip: str | None = arg(None, help="local CLIP vision model folder for consistency/alignment")


@dataclass
class CompareReport:
    gif: str | None
    png: str | None
    M: float
    analytic_init: bool
    steps: int
    motion_score: dict[str, float]  # baseline / fixed
    seconds: dict[str, float]
    flow_motion: dict[str, float] | None = None  # with --raft
    temporal_consistency: dict[str, float] | None = None  # with --clip
    image_alignment: dict[str, float] | None = None


def compare(run: CompareRun, ctx: RunContext | None = None) -> CompareReport:
    import torch

    from i2v_leak import metrics
    from i2v_leak.generation import generate_video
    from i2v_leak.video_io import save_gif, save_strip

    ctx = RunContext.of(ctx)
    out = ctx.out is not None
    gif, png = (ctx.output("compare.gif"), ctx.output("compare.png")) if out else (None, None)
    cil, cfg, image, M = _setup(run.image, run.model, run.size, run.generation, ctx)
    videos, seconds = {}, {}
    for name, fix in (("baseline", False), ("fixed", True)):
        t0 = time.perf_counter()
        videos[name] = generate_video(cil, image, cfg, ctx.seed, fix=fix)
        seconds[name] = time.perf_counter() - t0
    base, fixed = videos["baseline"], videos["fixed"]
    if out:
        save_gif(torch.cat([base, fixed], dim=-1), gif, fps=run.generation.gif_fps)  # side by side
        label = f"M={M:g}" + (" + Analytic-Init" if cil.stats else "")
        title = "left/top: stock; right/bottom: conditional-leakage fix"
        save_strip([("stock", base), (label, fixed)], png, title=title)
    report = CompareReport(
        str(gif) if gif else None, str(png) if png else None, M, bool(cil.stats), cfg.steps,
        {k: float(metrics.motion_score(v)[0]) for k, v in videos.items()}, seconds,
    )  # fmt: skip
    device = cil.pipe._execution_device
    if run.raft:
        raft = metrics.load_raft(run.raft, run.raft_size, device=device)
        report.flow_motion = {k: float(metrics.flow_motion_score(v, raft)[0]) for k, v in videos.items()}
    if run.clip:
        import numpy as np

        enc = metrics.ClipImageEncoder.from_pretrained(run.clip, device=device)
        img = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0
        report.temporal_consistency = {
            k: float(metrics.temporal_consistency(v, enc)[0]) for k, v in videos.items()
        }
        report.image_alignment = {
            k: float(metrics.image_alignment(v, img, enc)[0]) for k, v in videos.items()
        }
    return report


# ------------------------------------------------------------------------------------------------------ train


def _train_defaults() -> TrainConfig:
    return TrainConfig(steps=100, lr=SVD_LR, log_every=10)


@dataclass(frozen=True)
class TrainRun:
    """Fine-tune an SVD UNet with TimeNoise (accelerate, bf16, checkpointing).

    Checkpoints go to OUT/checkpoints (a rerun resumes from them) and the UNet to OUT/unet, a diffusers folder.
    """

    videos: str = arg(help="folder of training clips or 'synthetic'")
    model: Model = dataclasses.field(default_factory=Model)
    size: ClipSize = dataclasses.field(default_factory=ClipSize)
    num_synthetic: int = arg(16, help="clips made for --videos synthetic", min=1)
    stride: int = arg(1, help="take every stride-th frame", min=1)
    batch_size: int = arg(1, help="clips per step", min=1)
    beta_m: float | None = arg(None, help="TimeNoise β_m (default: preset 15)", gt=0)
    a: float | None = arg(None, help="TimeNoise exponent a (default: preset 5)", gt=0)
    mu_max: float = arg(1.0, help="TimeNoise μ_max", gt=0)
    fps: int | None = arg(None, help="the clips' frame rate (default: preset 3)", min=1)
    timenoise: bool = arg(
        True, help="TimeNoise on the condition (--no-timenoise: plain fine-tuning, the baseline)"
    )
    gradient_checkpointing: bool = arg(True, help="gradient checkpointing in the UNet (saves memory)")
    resume: bool = arg(
        False, help="require a checkpoint in OUT/checkpoints to continue from (resuming is automatic)"
    )
    train: TrainConfig = dataclasses.field(default_factory=_train_defaults)


@dataclass
class TrainReport:
    out: str
    unet: str
    steps: int
    resumed_from: int
    final_loss: float | None
    clips: int
    timenoise: bool
    beta_m: float
    a: float
    mu_max: float
    history: list[dict[str, float]]


def train(run: TrainRun, ctx: RunContext | None = None) -> TrainReport:
    """`i2v_leak.training.finetune_svd` on the clips (synthetic ones are made once; files are read per step)."""
    import torch

    from gen_common.training import latest_checkpoint
    from i2v_leak.presets import get_preset
    from i2v_leak.training import SVDFinetuneConfig, finetune_svd
    from i2v_leak.video_io import iter_video_clips, list_videos, synthetic_clips

    ctx = RunContext.of(ctx)
    if ctx.out is None:
        raise ValueError("train needs --out DIR (checkpoints and the fine-tuned UNet are written there)")
    if run.model.pipeline != "svd":
        raise ValueError("train fine-tunes Stable Video Diffusion: use --pipeline svd")
    out = Path(ctx.out).expanduser()
    ckpt = out / "checkpoints"
    if run.resume and latest_checkpoint(ckpt) is None:
        raise FileNotFoundError(f"--resume: {ckpt} holds no checkpoint to continue from")
    unet_paths = [ctx.output(name) for name in UNET_FILES]  # a finished run is refused before any work
    h, w, f = run.size.resolve(run.model)
    preset = get_preset("svd")
    ft = SVDFinetuneConfig(
        beta_m=run.beta_m if run.beta_m is not None else preset.beta_m,
        a=run.a if run.a is not None else preset.a,
        mu_max=run.mu_max,
        timenoise=run.timenoise,
        fps=run.fps or preset.fps or 3,
        motion_bucket_id=preset.motion_bucket_id or 20,
        batch_size=run.batch_size,
        gradient_checkpointing=run.gradient_checkpointing,
    )
    pipe = run.model.load(ctx)
    if run.videos == "synthetic":
        clips: Any = list(
            synthetic_clips(run.num_synthetic, f, h, w, torch.Generator().manual_seed(ctx.seed))
        )
        n_clips = len(clips)
    else:
        paths = list_videos(run.videos)
        if not paths:
            raise ValueError(
                f"no clips in {run.videos}: expected GIFs, mp4/webm/mov files or folders of frames"
            )
        n_clips = len(paths)

        def clips(step: int, generator: torch.Generator) -> torch.Tensor:
            batch = []
            while len(batch) < ft.batch_size:
                p = paths[int(torch.randint(0, len(paths), (1,), generator=generator))]
                got = list(
                    iter_video_clips(
                        [p], height=h, width=w, num_frames=f, stride=run.stride, generator=generator
                    )
                )
                if got:
                    batch.append(got[0])
            return torch.stack(batch)

    tc = dataclasses.replace(run.train, seed=ctx.seed)
    result = finetune_svd(
        pipe, clips, ft, tc, checkpoint_dir=ckpt, resume=True, device=ctx.device, progress=ctx.progress
    )
    unet_dir = unet_paths[0].parent
    pipe.unet.save_pretrained(unet_dir)
    return TrainReport(
        str(out), str(unet_dir), result.steps, result.resumed_from, result.final_loss, n_clips, ft.timenoise,
        ft.beta_m, ft.a, ft.mu_max, result.history,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class PresetsRun:
    """The paper's settings per model."""


@dataclass
class PresetsReport:
    presets: dict[str, dict[str, Any]]  # name -> the Preset's fields and the official code's μ_max


def presets(run: PresetsRun, ctx: RunContext | None = None) -> PresetsReport:
    from i2v_leak.presets import OFFICIAL_MU_MAX, PRESETS

    return PresetsReport(
        {
            k: {**dataclasses.asdict(p), "official_mu_max": OFFICIAL_MU_MAX.get(k, p.mu_max)}
            for k, p in PRESETS.items()
        }
    )


# ------------------------------------------------------------------------------------------------------ bench


@dataclass(frozen=True)
class BenchRun:
    """Time the wrapped tiny pipeline against the stock one, and stats streaming against stacking."""

    model: Model = dataclasses.field(default_factory=Model)
    repeats: int = arg(3, help="timed repeats", min=1)


@dataclass
class BenchReport:
    device: str
    pipeline: str
    generate_stock_s: float
    generate_fixed_s: float
    fixed_speed_ratio: float
    moments_stacked_s: float
    moments_streamed_s: float
    moments_ratio: float
    moments_agree: bool


def bench(run: BenchRun, ctx: RunContext | None = None) -> BenchReport:
    import torch

    from gen_common.bench import compare as timed
    from gen_common.device import device_summary
    from i2v_leak.adapters import wrap_pipeline
    from i2v_leak.generation import GenerationConfig, generate_video
    from i2v_leak.stats import RunningMoments, estimate_latent_stats
    from i2v_leak.video_io import synthetic_clips, synthetic_image

    ctx = RunContext.of(ctx)
    if run.model.model != "tiny":
        raise ValueError("bench runs on --model tiny (toy pipelines); it measures overhead, not model speed")
    pipe = run.model.load(ctx)
    h, w, f = TINY_SIZE["height"], TINY_SIZE["width"], TINY_SIZE["num_frames"]
    clips = synthetic_clips(8, f, h, w, torch.Generator().manual_seed(0))
    latent_stats = estimate_latent_stats(pipe, iter(clips), height=h, width=w, num_frames=f, progress=False)
    cil = wrap_pipeline(pipe, M=100.0 if run.model.pipeline == "svd" else 940, stats=latent_stats)
    cfg = GenerationConfig(h, w, f, steps=4, prompt="a moving square")
    image = synthetic_image(h, w)
    gen = timed(
        lambda: generate_video(cil, image, cfg, 0, fix=False),
        lambda: generate_video(cil, image, cfg, 0, fix=True),
        repeats=run.repeats,
    )
    # Streaming moments vs stacking everything and reducing once: same numbers, constant memory.
    lat = torch.randn(64, f, 4, h // 2, w // 2, generator=torch.Generator().manual_seed(1))

    def stacked() -> float:
        return float((lat.double().pow(2).mean(0) - lat.double().mean(0) ** 2).mean())

    def streamed() -> float:
        acc = RunningMoments()
        for i in range(0, lat.shape[0], 8):
            acc.update(lat[i : i + 8])
        return acc.tr_cov_over_d()

    mom = timed(stacked, streamed, repeats=run.repeats)
    return BenchReport(
        device_summary(pipe._execution_device), run.model.pipeline, gen.baseline_s, gen.candidate_s, gen.ratio,
        mom.baseline_s, mom.candidate_s, mom.ratio, math.isclose(stacked(), streamed(), rel_tol=1e-12),
    )  # fmt: skip
