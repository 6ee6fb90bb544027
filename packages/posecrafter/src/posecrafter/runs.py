"""One library function per command, each taking its frozen config and a `RunContext` (the CLI, the demo and a
notebook call the same functions). No argparse, printing or sys.exit here; torch is imported inside functions so
``posecrafter --help`` stays fast."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from gen_common.cli import RunContext, arg

__all__ = [
    "BenchReport",
    "BenchRun",
    "EditPreviewRun",
    "EvaluateRun",
    "GenerateReport",
    "GenerateRun",
    "TrainReport",
    "TrainRun",
    "bench",
    "edit_preview",
    "evaluate",
    "generate",
    "train",
]

SYNTHETIC = "synthetic"
_VIDEO_HELP = (
    "training video: folder of frames, GIF, mp4/webm (posecrafter[video]) or 'synthetic' (a blob person)"
)
_POSES_HELP = (
    "its poses: folder of OpenPose/DWPose JSON files or one JSON sequence (not needed for 'synthetic')"
)
_TARGETS_HELP = "target poses: folder of JSON files, one JSON sequence, or 'synthetic'"
_MODEL_HELP = (
    "Stable Diffusion 1.5 folder or hub id, 'tiny' (offline toy) or 'sd15-random' (SD sizes, random weights)"
)
_CN_HELP = "OpenPose ControlNet folder or hub id (e.g. lllyasviel/sd-controlnet-openpose)"


def _size(model: str, width: int | None, height: int | None) -> tuple[int, int]:  # tiny: 32 px, SD: 512 px
    d = 32 if model == "tiny" else 512
    return (width or d, height or d)


def _training_data(
    video: str, poses: str | None, n: int, width: int, height: int, seed: int, detector: str | None = None
) -> tuple[Any, list[Any]]:
    from posecrafter.poses import read_pose_sequence
    from posecrafter.render import synthetic_clip
    from posecrafter.video_io import read_video, resize_frames

    if video == SYNTHETIC:
        return synthetic_clip(n, width, height, seed=seed)
    frames = read_video(video, max_frames=n)
    if poses is None:
        if detector is None:
            raise ValueError(
                "give the training video's poses (--poses) or a pose-detector weights folder (--detector)"
            )
        from posecrafter.detect import PoseDetector

        pose_list = PoseDetector(detector)(frames)
    else:
        pose_list = read_pose_sequence(poses, width=frames.shape[2], height=frames.shape[1])[:n]
    if len(pose_list) != len(frames):
        raise ValueError(
            f"the training video has {len(frames)} frames but {len(pose_list)} poses; give one pose per frame"
        )
    return resize_frames(frames, width, height), [p.scaled(width, height) for p in pose_list]


def _targets(targets: str, n: int | None, width: int, height: int) -> list[Any]:
    from posecrafter.poses import read_pose_sequence
    from posecrafter.render import synthetic_pose_sequence

    if targets == SYNTHETIC:
        return synthetic_pose_sequence(n or 4, width, height, phase=1.3, speed=0.7, drift=0.1)
    seq = read_pose_sequence(targets, width=width, height=height)
    return [p.scaled(width, height) for p in seq[:n]]


def _pipeline(
    model: str, controlnet: str | None, ctx: RunContext, weights: str | None = None, *, training: bool = False
) -> Any:
    import torch

    from gen_common.device import resolve_dtype
    from posecrafter.pipeline import PoseCrafterPipeline

    dev = ctx.torch_device()
    # training keeps float32 master weights under bf16 autocast; inference runs in bf16 on GPUs
    dtype = None if model == "tiny" else (torch.float32 if training else resolve_dtype(None, dev))
    return PoseCrafterPipeline.from_pretrained(
        model, controlnet, weights=weights, device=dev, dtype=dtype, seed=ctx.seed
    )


# ---- train -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainRun:
    """One-shot tuning on one training video (the precursor's trainable set); writes weights/ for generate."""

    video: str = arg(SYNTHETIC, help=_VIDEO_HELP)
    poses: str | None = arg(None, help=_POSES_HELP)
    prompt: str = arg("a person", help="the training video's caption")
    model: str = arg("tiny", help=_MODEL_HELP)
    controlnet: str | None = arg(None, help=_CN_HELP)
    width: int | None = arg(None, help="frame width (default 512, tiny 32)", min=8)
    height: int | None = arg(None, help="frame height (default 512, tiny 32)", min=8)
    frames: int = arg(8, help="training frames (the precursor: 8)", min=1)
    steps: int = arg(1500, help="optimizer steps (the precursor: 1500)", min=1)
    lr: float = arg(3e-5, help="learning rate (the precursor: 3e-5)", gt=0)
    grad_clip: float = arg(1.0, help="gradient-norm clip over the trained tensors", gt=0)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = arg(
        "auto", help="auto: bf16 on CUDA, none on CPU"
    )
    gradient_checkpointing: bool = arg(True, help="recompute activations in backward (less memory)")
    checkpoint_every: int = arg(250, help="steps between resumable checkpoints (0: only at the end)", min=0)
    detector: str | None = arg(None, help="OpenPose weights folder to detect poses when --poses is absent")


@dataclass
class TrainReport:
    steps: int
    resumed_from: int
    final_loss: float
    trained_tensors: int
    trained_parameters: int
    seconds: float
    weights: str | None
    history: list[dict[str, float]] = field(default_factory=list)


def train(run: TrainRun, ctx: RunContext | None = None) -> TrainReport:
    from gen_common.atomic import atomic_write_json
    from posecrafter.attention import select_trainable
    from posecrafter.training import OneShotConfig, train_one_shot

    ctx = RunContext.of(ctx)
    w, h = _size(run.model, run.width, run.height)
    frames, poses = _training_data(run.video, run.poses, run.frames, w, h, ctx.seed, run.detector)
    pipe = _pipeline(run.model, run.controlnet, ctx, training=True)
    cfg = OneShotConfig(
        steps=run.steps, lr=run.lr, grad_clip=run.grad_clip, mixed_precision=run.mixed_precision,
        gradient_checkpointing=run.gradient_checkpointing, checkpoint_every=run.checkpoint_every, seed=ctx.seed,
    )  # fmt: skip
    trained = select_trainable({"unet": pipe.c.unet, "controlnet": pipe.c.controlnet}, cfg.trainable)
    out = None
    if ctx.out is not None:
        from posecrafter.pipeline import WEIGHTS_CONFIG, WEIGHTS_NAME

        for name in (
            f"weights/{WEIGHTS_NAME}",
            f"weights/{WEIGHTS_CONFIG}",
            "train_log.json",
            "train_strip.png",
        ):
            ctx.output(name)  # the output policy: refuse to replace unless --overwrite
        out = Path(ctx.out)
    t0 = time.perf_counter()
    res = train_one_shot(
        pipe,
        frames,
        poses,
        run.prompt,
        cfg,
        out_dir=out,
        device=ctx.torch_device(),
        progress=ctx.progress,
    )
    secs = time.perf_counter() - t0
    weights = None
    if out is not None:
        from posecrafter.render import pose_images
        from posecrafter.video_io import write_strip

        atomic_write_json(out / "train_log.json", {"config": asdict(run), "history": res.history})
        write_strip([pose_images(poses), frames], out / "train_strip.png")
        weights = str(out / "weights") if (out / "weights").is_dir() else None
    return TrainReport(
        res.steps, res.resumed_from, res.final_loss, len(trained), sum(p.numel() for p in trained.values()),
        secs, weights, res.history,
    )  # fmt: skip


# ---- generate ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerateRun:
    """Generate the trained person following new poses (reference frame, inversion, pose insertion, latent edit)."""

    targets: str = arg(SYNTHETIC, help=_TARGETS_HELP)
    video: str = arg(SYNTHETIC, help=_VIDEO_HELP)
    poses: str | None = arg(None, help=_POSES_HELP)
    weights: str | None = arg(
        None, help="weights/ folder written by `posecrafter train` (default: untrained)"
    )
    prompt: str = arg("a person", help="the prompt (the training caption works best)")
    model: str = arg("tiny", help=_MODEL_HELP)
    controlnet: str | None = arg(None, help=_CN_HELP)
    width: int | None = arg(None, help="frame width (default 512, tiny 32)", min=8)
    height: int | None = arg(None, help="frame height (default 512, tiny 32)", min=8)
    frames: int = arg(8, help="training frames to read", min=1)
    target_frames: int | None = arg(None, help="use the first N target poses (synthetic: default 4)", min=1)
    steps: int = arg(50, help="DDIM steps (the precursor: 50)", min=1)
    guidance: float = arg(12.0, help="classifier-free guidance (the precursor: 12)", min=0)
    controlnet_scale: float = arg(1.0, help="ControlNet conditioning scale", min=0)
    init: Literal["inversion", "noise"] = arg(
        "inversion", help="initial latents: inverted reference frame or noise"
    )
    insert_training_pose: bool = arg(True, help="insert the reference frame's pose at the key-frame slot")
    latent_edit: bool = arg(True, help="warp face and hands of the initial latent by least-squares affines")
    distance: Literal["normalized", "l2"] = arg("normalized", help="pose distance for the reference frame")
    reference_frame: int | None = arg(None, help="force this training frame as the reference", min=0)
    fps: float = arg(8.0, help="frames per second of the GIF/MP4", gt=0)
    mp4: bool = arg(False, help="also write video.mp4 (posecrafter[video])")


@dataclass
class GenerateReport:
    frames: int
    reference_frame: int | None
    edited_parts: int
    skipped_parts: int
    seconds: float
    seconds_per_frame: float
    files: list[str] = field(default_factory=list)


def generate(run: GenerateRun, ctx: RunContext | None = None) -> GenerateReport:
    import numpy as np

    from posecrafter.pipeline import GenerationConfig
    from posecrafter.render import pose_images
    from posecrafter.video_io import write_gif, write_mp4, write_strip

    ctx = RunContext.of(ctx)
    w, h = _size(run.model, run.width, run.height)
    frames, poses = _training_data(run.video, run.poses, run.frames, w, h, ctx.seed)
    targets = _targets(run.targets, run.target_frames, w, h)
    pipe = _pipeline(run.model, run.controlnet, ctx, run.weights)
    cfg = GenerationConfig(
        num_inference_steps=run.steps, guidance_scale=run.guidance, controlnet_scale=run.controlnet_scale,
        init=run.init, insert_training_pose=run.insert_training_pose, latent_edit=run.latent_edit,
        distance=run.distance, reference_frame=run.reference_frame,
    )  # fmt: skip
    bar = ctx.bar(total=run.steps, desc="generate")
    pipe.progress = lambda i, n: bar.update(1)
    t0 = time.perf_counter()
    try:
        out = pipe(run.prompt, frames, poses, targets, cfg, ctx.generator())
    finally:
        bar.close()
    secs = time.perf_counter() - t0
    files = []
    if ctx.out is not None:
        files.append(str(write_gif(out.frames, ctx.output("video.gif"), run.fps)))
        ref = [] if out.reference_index is None else [np.repeat(frames[out.reference_index][None], 1, 0)]
        files.append(str(write_strip([pose_images(targets), out.frames, *ref], ctx.output("strip.png"))))
        if run.mp4:
            files.append(str(write_mp4(out.frames, ctx.output("video.mp4"), int(run.fps))))
    edited = sum(r.status == "edited" for r in out.edits)
    return GenerateReport(
        len(out.frames),
        out.reference_index,
        edited,
        len(out.edits) - edited,
        secs,
        secs / len(out.frames),
        files,
    )


# ---- edit-preview --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EditPreviewRun:
    """Preview the face/hand affine edit in pixel space (the reference frame warped onto each target pose)."""

    targets: str = arg(SYNTHETIC, help=_TARGETS_HELP)
    video: str = arg(SYNTHETIC, help=_VIDEO_HELP)
    poses: str | None = arg(None, help=_POSES_HELP)
    width: int = arg(64, help="preview frame width", min=8)
    height: int = arg(64, help="preview frame height", min=8)
    frames: int = arg(8, help="training frames to read", min=1)
    target_frames: int | None = arg(None, help="use the first N target poses", min=1)
    distance: Literal["normalized", "l2"] = arg("normalized", help="pose distance for the reference frame")
    threshold: float = arg(0.3, help="landmark confidence threshold", min=0, max=1)
    margin: float = arg(1.0, help="mask margin around each part's landmarks (pixels)", min=0)


def edit_preview(run: EditPreviewRun, ctx: RunContext | None = None) -> dict[str, Any]:
    import numpy as np
    import torch

    from posecrafter.affine import edit_latents, fit_affine
    from posecrafter.reference import select_reference_frame
    from posecrafter.render import pose_images
    from posecrafter.video_io import write_strip

    ctx = RunContext.of(ctx)
    frames, poses = _training_data(run.video, run.poses, run.frames, run.width, run.height, ctx.seed)
    targets = _targets(run.targets, run.target_frames, run.width, run.height)
    k = select_reference_frame(poses, targets, run.distance)
    ref = torch.from_numpy(frames[k]).permute(2, 0, 1).float()
    init = ref.expand(len(targets), -1, -1, -1).clone()
    # factor 1: the same edit as on latents, applied to pixels so a person can look at it
    edited, records = edit_latents(
        init, ref, poses[k], targets, 1, threshold=run.threshold, margin=run.margin
    )
    rms = []
    for r in records:
        if r.status == "edited":
            s, d = poses[k].part(r.part), targets[r.frame].part(r.part)
            ok = (s[:, 2] >= run.threshold) & (d[:, 2] >= run.threshold)
            a = fit_affine(s[ok, :2], d[ok, :2])
            rms.append(float(np.sqrt((((s[ok, :2] @ a[:, :2].T + a[:, 2]) - d[ok, :2]) ** 2).sum(1).mean())))
    files = []
    if ctx.out is not None:
        imgs = edited.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
        files.append(str(write_strip([pose_images(targets), imgs], ctx.output("edit_preview.png"))))
    return {
        "reference_frame": k,
        "edited_parts": sum(r.status == "edited" for r in records),
        "skipped": [f"frame {r.frame} {r.part}: {r.status}" for r in records if r.status != "edited"],
        "fit_rms_px_max": max(rms) if rms else None,
        "files": files,
    }


# ---- evaluate ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluateRun:
    """L1, PSNR and SSIM of generated frames against ground truth (LPIPS/FID/FVD: library, your extractors)."""

    generated: str = arg(help="generated video (GIF, folder of frames, mp4)")
    reference: str = arg(help="ground-truth video of the same length")


def evaluate(run: EvaluateRun, ctx: RunContext | None = None) -> dict[str, Any]:
    from posecrafter.metrics import l1, psnr, ssim
    from posecrafter.video_io import read_video, resize_frames

    gen, ref = read_video(run.generated), read_video(run.reference)
    if len(gen) != len(ref):
        raise ValueError(f"{len(gen)} generated frames but {len(ref)} reference frames")
    gen = resize_frames(gen, ref.shape[2], ref.shape[1])
    return {"frames": len(gen), "l1": l1(gen, ref), "psnr": psnr(gen, ref), "ssim": ssim(gen, ref)}


# ---- bench -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchRun:
    """Time per frame vs frame-by-frame ControlNet, the temporal modules' cost, train step time and memory."""

    model: str = arg("tiny", help=_MODEL_HELP)
    controlnet: str | None = arg(None, help=_CN_HELP)
    width: int | None = arg(None, help="frame width (default 512, tiny 32)", min=8)
    height: int | None = arg(None, help="frame height (default 512, tiny 32)", min=8)
    frames: int = arg(8, help="target frames per video", min=1)
    steps: int = arg(10, help="DDIM steps per generation", min=1)
    train_steps: int = arg(3, help="timed optimizer steps per training variant", min=1)
    repeats: int = arg(1, help="timed repeats (the minimum is reported)", min=1)
    warmup: bool = arg(True, help="one untimed run of each variant first (kernels, lazy imports)")


@dataclass
class BenchReport:
    device: str
    rows: list[dict[str, Any]]
    ratios: dict[str, float]


def bench(run: BenchRun, ctx: RunContext | None = None) -> BenchReport:
    import torch

    from gen_common.device import synchronize
    from posecrafter.attention import KeyFrameAttnProcessor, temporal_processors
    from posecrafter.pipeline import GenerationConfig
    from posecrafter.render import synthetic_clip, synthetic_pose_sequence
    from posecrafter.training import OneShotConfig, OneShotModel

    ctx = RunContext.of(ctx)
    dev = ctx.torch_device()
    w, h = _size(run.model, run.width, run.height)
    pipe = _pipeline(run.model, run.controlnet, ctx)
    frames, poses = synthetic_clip(run.frames, w, h, seed=ctx.seed)
    targets = synthetic_pose_sequence(run.frames, w, h, phase=1.3)

    def timed(fn: Any) -> float:
        if run.warmup:
            fn()
        best = float("inf")
        for _ in range(run.repeats):
            synchronize(dev)
            t0 = time.perf_counter()
            fn()
            synchronize(dev)
            best = min(best, time.perf_counter() - t0)
        return best

    gen = ctx.generator()
    base_cfg = GenerationConfig(
        num_inference_steps=run.steps, init="noise", insert_training_pose=False, joint=False
    )
    full_cfg = GenerationConfig(num_inference_steps=run.steps)
    rows = []
    t_base = timed(lambda: pipe("a person", frames, poses, targets, base_cfg, gen))
    rows.append({"variant": "frame-by-frame ControlNet", "s_per_frame": t_base / run.frames})
    t_full = timed(lambda: pipe("a person", frames, poses, targets, full_cfg, gen))
    rows.append(
        {"variant": "PoseCrafter (inversion + insertion + joint)", "s_per_frame": t_full / run.frames}
    )
    joint_cfg = GenerationConfig(num_inference_steps=run.steps, init="noise", latent_edit=False)
    t_joint = timed(lambda: pipe("a person", frames, poses, targets, joint_cfg, gen))
    rows.append({"variant": "joint denoising only (no inversion)", "s_per_frame": t_joint / run.frames})
    # the same joint run with the temporal attention switched off (key-frame attention kept)
    saved = {}
    for name, proc in temporal_processors(pipe.c.unet).items():
        attn = pipe.c.unet.get_submodule(name.rsplit(".", 1)[0])
        saved[name] = proc
        attn.set_processor(KeyFrameAttnProcessor())
    t_no_temp = timed(lambda: pipe("a person", frames, poses, targets, joint_cfg, gen))
    for name, proc in saved.items():
        pipe.c.unet.get_submodule(name.rsplit(".", 1)[0]).set_processor(proc)
    rows.append({"variant": "joint, temporal attention off", "s_per_frame": t_no_temp / run.frames})

    lat = pipe.encode_frames(frames).float()
    text, cond = pipe.encode_prompt("a person").float(), pipe.condition(poses, h, w).float()
    for ckpt in (False, True):
        model = OneShotModel(
            pipe.c.unet,
            pipe.c.controlnet,
            lat,
            text,
            cond,
            pipe.c.scheduler.alphas_cumprod,
            OneShotConfig().trainable,
        )
        model.to(dev).train()
        for m in (pipe.c.unet, pipe.c.controlnet):
            (m.enable_gradient_checkpointing if ckpt else m.disable_gradient_checkpointing)()
        opt = torch.optim.AdamW([p for p in model.trained.values()], lr=1e-6)
        amp = (
            torch.autocast(dev.type, dtype=torch.bfloat16)
            if dev.type == "cuda"
            else torch.autocast("cpu", enabled=False)
        )

        def step(model: Any = model, opt: Any = opt, amp: Any = amp) -> None:
            for _ in range(run.train_steps):
                noise = torch.randn(lat.shape, generator=gen).to(dev)
                with amp:
                    loss = model(noise, torch.tensor([500], device=dev))
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)

        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        t = timed(step) / run.train_steps
        peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else float("nan")
        rows.append(
            {
                "variant": f"train step ({'checkpointing' if ckpt else 'no checkpointing'})",
                "s_per_step": t,
                "peak_mib": peak,
            }
        )
    for m in (pipe.c.unet, pipe.c.controlnet):
        m.disable_gradient_checkpointing()
        m.eval()
        m.requires_grad_(False)
    ratios = {
        "posecrafter_vs_frame_by_frame": t_full / t_base,
        "joint_vs_frame_by_frame": t_joint / t_base,
        "temporal_modules_cost": t_joint / t_no_temp,
        "checkpointing_step_time": rows[-1]["s_per_step"] / rows[-2]["s_per_step"],
    }
    if dev.type == "cuda":
        ratios["checkpointing_peak_memory"] = rows[-1]["peak_mib"] / rows[-2]["peak_mib"]
    return BenchReport(str(dev), rows, ratios)
