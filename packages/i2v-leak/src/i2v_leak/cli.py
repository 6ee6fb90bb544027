"""Console script ``i2v-leak``: latent statistics, generation with the fixes, TimeNoise fine-tuning, comparisons.

Every subcommand runs offline on ``--model tiny`` (toy pipelines built from configs) and takes a local diffusers
folder or a hub id (when online) for real models.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gen_common.cli import add_common_args, emit, format_table, progress_enabled, run_cli

PROG = "i2v-leak"
TINY_SIZE = {"height": 32, "width": 32, "num_frames": 2}

DESCRIPTION = """\
Fix conditional image leakage in image-to-video diffusion (Zhao et al., NeurIPS 2024) on stock diffusers
pipelines: start generation earlier (M < T) from the KL-optimal Analytic-Init Gaussian, estimated from your own
videos, and fine-tune with time-dependent noise on the condition (TimeNoise).

  i2v-leak stats    --model tiny --videos synthetic --out runs/stats
  i2v-leak generate --pipeline svd --model tiny --image synthetic --stats runs/stats/latent_stats.safetensors
  i2v-leak compare  --pipeline svd --model tiny --image synthetic --out runs/compare
  i2v-leak train    --model tiny --videos synthetic --steps 2 --out runs/train
  i2v-leak presets

Real models: --model PATH (a diffusers folder) or a hub id such as stabilityai/stable-video-diffusion-img2vid
(needs the network; offline, download it elsewhere and pass the folder).
"""


# -- shared argument groups ------------------------------------------------------------------------------------
def _model_args(p: argparse.ArgumentParser, *, pipelines: Sequence[str] = ("svd", "i2vgenxl")) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--pipeline", choices=list(pipelines), default=pipelines[0], help="which diffusers pipeline"
    )
    g.add_argument(
        "--model",
        default="tiny",
        help="'tiny' (offline toy model), a diffusers folder, or a hub id (default: tiny)",
    )
    g.add_argument(
        "--dtype", default=None, help="float32, bfloat16 or float16 (default: bf16 on CUDA, else fp32)"
    )
    g.add_argument("--variant", default=None, help="weight-file variant to load, e.g. fp16")
    g.add_argument("--cpu-offload", action="store_true", help="accelerate model CPU offload (CUDA only)")
    g.add_argument("--vae-slicing", action="store_true", help="decode one frame at a time (I2VGen-XL's VAE)")
    g.add_argument("--vae-tiling", action="store_true", help="decode in tiles (I2VGen-XL's VAE)")


def _size_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("clip size (default: the preset's; 32×32, 2 frames for --model tiny)")
    g.add_argument("--height", type=int, default=None)
    g.add_argument("--width", type=int, default=None)
    g.add_argument("--num-frames", type=int, default=None)


def _gen_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("generation")
    g.add_argument(
        "--image", required=True, help="conditional image file, or 'synthetic' for a generated one"
    )
    g.add_argument("--prompt", default="", help="text prompt (I2VGen-XL)")
    g.add_argument(
        "--M",
        type=float,
        default=None,
        help="start: σ_max for SVD, a timestep for I2VGen-XL (default: preset)",
    )
    g.add_argument(
        "--stats", default=None, help="latent statistics file for Analytic-Init (from `i2v-leak stats`)"
    )
    g.add_argument("--steps", type=int, default=None, help="sampling steps (default: preset; 4 for tiny)")
    g.add_argument("--guidance", type=float, default=None, help="CFG scale (default: preset)")
    g.add_argument("--fps", type=int, default=None, help="fps conditioning (default: preset)")
    g.add_argument("--motion-bucket-id", type=int, default=None, help="SVD motion bucket (default: preset)")
    g.add_argument(
        "--noise-aug-strength", type=float, default=None, help="SVD condition noise (default: stock)"
    )
    g.add_argument("--eta", type=float, default=None, help="DDIM η for I2VGen-XL (default: preset)")
    g.add_argument("--decode-chunk-size", type=int, default=None, help="frames decoded at once (memory)")
    g.add_argument("--gif-fps", type=float, default=6.0, help="frame rate of the written GIF")
    g.add_argument("--overwrite", action="store_true", help="replace existing output files")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("stats", help="estimate Analytic-Init latent statistics from a folder of videos")
    _model_args(p)
    _size_args(p)
    p.add_argument(
        "--videos",
        required=True,
        help="folder of clips (GIF, mp4/webm/mov, folders of frames) or 'synthetic'",
    )
    p.add_argument("--num-synthetic", type=int, default=16, help="clips made for --videos synthetic")
    p.add_argument("--stride", type=int, default=1, help="take every stride-th frame")
    p.add_argument("--max-videos", type=int, default=None, help="use at most this many clips")
    p.add_argument(
        "--posterior", choices=["sample", "mode"], default="sample", help="VAE posterior sample or mode"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing statistics file")
    add_common_args(p, out_default="runs/i2v-leak/stats")

    p = sub.add_parser("generate", help="image-to-video with early start and Analytic-Init (or --baseline)")
    _model_args(p)
    _size_args(p)
    _gen_args(p)
    p.add_argument("--baseline", action="store_true", help="run the stock pipeline instead (no fix)")
    add_common_args(p, out_default="runs/i2v-leak/generate")

    p = sub.add_parser("compare", help="baseline vs fixed on one image: a GIF, a PNG strip and motion scores")
    _model_args(p)
    _size_args(p)
    _gen_args(p)
    p.add_argument(
        "--raft", default=None, help="local RAFT weights (.pth/.safetensors) for optical-flow motion"
    )
    p.add_argument("--raft-size", choices=["small", "large"], default="small")
    p.add_argument("--clip", default=None, help="local CLIP vision model folder for consistency/alignment")
    add_common_args(p, out_default="runs/i2v-leak/compare")

    p = sub.add_parser("train", help="fine-tune an SVD UNet with TimeNoise (accelerate, bf16, checkpointing)")
    _model_args(p, pipelines=("svd",))
    _size_args(p)
    p.add_argument("--videos", required=True, help="folder of training clips or 'synthetic'")
    p.add_argument("--num-synthetic", type=int, default=16, help="clips made for --videos synthetic")
    p.add_argument("--stride", type=int, default=1, help="take every stride-th frame")
    p.add_argument("--steps", type=int, default=100, help="optimizer steps")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: preset 3e-5)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--beta-m", type=float, default=None, help="TimeNoise β_m (default: preset 15)")
    p.add_argument("--a", type=float, default=None, help="TimeNoise exponent a (default: 5)")
    p.add_argument("--mu-max", type=float, default=1.0, help="TimeNoise μ_max (default: 1)")
    p.add_argument("--fps", type=int, default=None, help="the clips' frame rate (default: preset 3)")
    p.add_argument("--no-timenoise", action="store_true", help="plain fine-tuning (the paper's baseline)")
    p.add_argument("--no-gradient-checkpointing", action="store_true")
    p.add_argument("--mixed-precision", choices=["auto", "no", "bf16", "fp16"], default="auto")
    p.add_argument("--ema-decay", type=float, default=None)
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--resume", action="store_true", help="continue a run in --out")
    p.add_argument("--overwrite", action="store_true", help="start over in a non-empty --out")
    add_common_args(p, out_default="runs/i2v-leak/train")

    p = sub.add_parser("presets", help="the paper's settings per model")
    add_common_args(p)

    p = sub.add_parser(
        "bench", help="time the wrapped tiny pipeline against the stock one, and stats streaming"
    )
    _model_args(p)
    p.add_argument("--repeats", type=int, default=3)
    add_common_args(p)
    return parser


# -- helpers ------------------------------------------------------------------------------------------------------
def _load(args: argparse.Namespace) -> Any:
    from i2v_leak.loading import LoadOptions, load_pipeline

    opts = LoadOptions(
        dtype=args.dtype,
        variant=args.variant,
        cpu_offload=args.cpu_offload,
        vae_slicing=args.vae_slicing,
        vae_tiling=args.vae_tiling,
        seed=args.seed,
    )
    pipe = load_pipeline(args.pipeline, args.model, args.device, opts)
    pipe.set_progress_bar_config(disable=args.json or not progress_enabled())
    return pipe


def _size(args: argparse.Namespace) -> tuple[int, int, int]:
    from i2v_leak.presets import get_preset

    _check_positive(args, "height", "width", "num_frames")
    base = TINY_SIZE if args.model == "tiny" else vars(get_preset(args.pipeline))
    h = args.height or base["height"]
    w = args.width or base["width"]
    f = args.num_frames or base["num_frames"]
    for name, v in (("height", h), ("width", w)):
        if v % 8:
            raise ValueError(f"--{name} must be a multiple of 8, got {v}")
    if f < 2:
        raise ValueError("--num-frames must be >= 2")
    return int(h), int(w), int(f)


def _check_positive(args: argparse.Namespace, *names: str) -> None:
    """Options that must be > 0 when given (0 would otherwise fall back to a default silently)."""
    for name in names:
        v = getattr(args, name, None)
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {v}")


def _out_file(out: str | None, name: str, overwrite: bool) -> Path:
    if not out:
        raise ValueError("--out is required for this command")
    d = Path(out)
    if d.exists() and not d.is_dir():
        raise FileExistsError(f"{d} is a file; --out must be a folder")
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass --overwrite or choose another --out")
    return p


def _clips(args: argparse.Namespace, h: int, w: int, f: int) -> tuple[Any, int | None]:
    """An iterator of clips in [−1, 1] and their number (None when unknown)."""
    import torch

    from i2v_leak.video_io import iter_video_clips, list_videos, synthetic_clips

    if args.videos == "synthetic":
        n = args.num_synthetic
        if n < 1:
            raise ValueError("--num-synthetic must be >= 1")
        return iter(synthetic_clips(n, f, h, w, torch.Generator().manual_seed(args.seed))), n
    paths = list_videos(args.videos)
    if not paths:
        raise ValueError(f"no clips in {args.videos}: expected GIFs, mp4/webm/mov files or folders of frames")
    gen = torch.Generator().manual_seed(args.seed)
    return iter_video_clips(paths, height=h, width=w, num_frames=f, stride=args.stride, generator=gen), len(
        paths
    )


def _image(args: argparse.Namespace, h: int, w: int) -> Any:
    from i2v_leak.video_io import load_image, synthetic_image

    if args.image == "synthetic":
        return synthetic_image(h, w, seed=args.seed)
    return load_image(args.image, h, w)


def _gen_setup(args: argparse.Namespace) -> tuple[Any, Any, Any, float | None]:
    """(wrapped pipeline, generation config, image, M) for generate/compare."""
    from i2v_leak.adapters import wrap_pipeline
    from i2v_leak.generation import GenerationConfig
    from i2v_leak.presets import get_preset
    from i2v_leak.stats import LatentStats

    h, w, f = _size(args)
    preset = get_preset(args.pipeline)
    tiny = args.model == "tiny"
    M = args.M if args.M is not None else preset.M
    _check_positive(args, "steps", "guidance", "fps", "decode_chunk_size")
    # Checked here, before minutes of model loading; the adapter checks the exact bounds again.
    if not (math.isfinite(M) and M > 0):
        raise ValueError(f"--M must be a positive number (σ_max for SVD, a timestep for I2VGen-XL), got {M}")
    if args.pipeline == "i2vgenxl":
        if int(M) != M:
            raise ValueError(f"--M is a timestep for I2VGen-XL and must be an integer, got {M}")
        M = int(M)
    stats = LatentStats.load(args.stats) if args.stats else None
    image = _image(args, h, w)  # bad inputs fail before the model loads
    pipe = _load(args)
    cil = wrap_pipeline(pipe, M=M, stats=stats)
    cfg = GenerationConfig(
        height=h,
        width=w,
        num_frames=f,
        steps=args.steps or (4 if tiny else preset.steps),
        guidance=args.guidance if args.guidance is not None else preset.guidance,
        fps=args.fps if args.fps is not None else preset.fps,
        motion_bucket_id=args.motion_bucket_id
        if args.motion_bucket_id is not None
        else preset.motion_bucket_id,
        noise_aug_strength=args.noise_aug_strength,
        eta=args.eta if args.eta is not None else preset.eta,
        prompt=args.prompt,
        decode_chunk_size=args.decode_chunk_size,
    )
    if args.pipeline == "svd":
        cfg = GenerationConfig(**{**vars(cfg), "eta": None, "prompt": ""})
    return cil, cfg, image, M


# -- subcommands -------------------------------------------------------------------------------------------------
def cmd_stats(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from i2v_leak.stats import estimate_latent_stats

    h, w, f = _size(args)
    _check_positive(args, "num_synthetic", "stride", "max_videos")
    target = _out_file(args.out, "latent_stats.safetensors", args.overwrite)
    pipe = _load(args)
    clips, total = _clips(args, h, w, f)
    stats = estimate_latent_stats(
        pipe,
        clips,
        height=h,
        width=w,
        num_frames=f,
        generator=torch.Generator().manual_seed(args.seed),
        posterior=args.posterior,
        max_videos=args.max_videos,
        show_progress=False if args.json else None,
        total=total,
        meta={"pipeline": args.pipeline, "model": args.model, "videos": str(args.videos)},
    )
    stats.save(target, overwrite=args.overwrite)
    return {
        "stats": str(target),
        "count": stats.count,
        "height": h,
        "width": w,
        "num_frames": f,
        "latent_shape": list(stats.latent_shape),
        "tr_cov_over_d": stats.tr_cov_over_d,
        "mean_abs_mean": float(stats.mean.abs().mean()),
        "mean_sq_mean": float((stats.mean**2).mean()),
    }


def cmd_generate(args: argparse.Namespace) -> dict[str, Any]:
    from i2v_leak.generation import generate_video
    from i2v_leak.metrics import motion_score
    from i2v_leak.video_io import save_gif, save_strip

    gif = _out_file(args.out, "video.gif", args.overwrite)
    png = _out_file(args.out, "frames.png", args.overwrite)
    cil, cfg, image, M = _gen_setup(args)
    video = generate_video(cil, image, cfg, args.seed, fix=not args.baseline)
    save_gif(video, gif, fps=args.gif_fps)
    label = "stock" if args.baseline else f"M={M:g}" + (" + Analytic-Init" if cil.stats else "")
    save_strip([(label, video)], png, title=f"{args.pipeline} ({args.model})")
    return {
        "gif": str(gif),
        "frames_png": str(png),
        "fixed": not args.baseline,
        "M": None if args.baseline else M,
        "analytic_init": bool(cil.stats) and not args.baseline,
        "steps": cfg.steps,
        "shape": list(video.shape),
        "motion_score": float(motion_score(video)[0]),
    }


def cmd_compare(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from i2v_leak import metrics
    from i2v_leak.generation import generate_video
    from i2v_leak.video_io import save_gif, save_strip

    gif = _out_file(args.out, "compare.gif", args.overwrite)
    png = _out_file(args.out, "compare.png", args.overwrite)
    cil, cfg, image, M = _gen_setup(args)
    base = generate_video(cil, image, cfg, args.seed, fix=False)
    fixed = generate_video(cil, image, cfg, args.seed, fix=True)
    side = torch.cat([base, fixed], dim=-1)  # side by side in one GIF
    save_gif(side, gif, fps=args.gif_fps)
    label = f"M={M:g}" + (" + Analytic-Init" if cil.stats else "")
    save_strip(
        [("stock", base), (label, fixed)], png, title="left/top: stock; right/bottom: conditional-leakage fix"
    )
    result: dict[str, Any] = {
        "gif": str(gif),
        "png": str(png),
        "M": M,
        "analytic_init": bool(cil.stats),
        "steps": cfg.steps,
        "motion_score": {
            "baseline": float(metrics.motion_score(base)[0]),
            "fixed": float(metrics.motion_score(fixed)[0]),
        },
    }
    if args.raft:
        raft = metrics.load_raft(args.raft, args.raft_size, device=cil.pipe._execution_device)
        result["flow_motion"] = {
            "baseline": float(metrics.flow_motion_score(base, raft)[0]),
            "fixed": float(metrics.flow_motion_score(fixed, raft)[0]),
        }
    if args.clip:
        enc = metrics.ClipImageEncoder.from_pretrained(args.clip, device=cil.pipe._execution_device)
        import numpy as np

        img = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0
        result["temporal_consistency"] = {
            k: float(metrics.temporal_consistency(v, enc)[0])
            for k, v in (("baseline", base), ("fixed", fixed))
        }
        result["image_alignment"] = {
            k: float(metrics.image_alignment(v, img, enc)[0])
            for k, v in (("baseline", base), ("fixed", fixed))
        }
    return result


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from gen_common.training import TrainConfig, latest_checkpoint
    from i2v_leak.presets import get_preset
    from i2v_leak.train import SVDFinetuneConfig, finetune_svd
    from i2v_leak.video_io import iter_video_clips, list_videos

    if not args.out:
        raise ValueError("--out is required for train")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        if args.overwrite:
            import shutil

            shutil.rmtree(out)
        elif not args.resume or latest_checkpoint(out) is None:
            raise FileExistsError(f"{out} is not empty; pass --resume to continue a run there or --overwrite")
    h, w, f = _size(args)
    preset = get_preset("svd")
    _check_positive(args, "steps", "batch_size", "lr", "beta_m", "a", "fps", "num_synthetic", "stride")
    ft = SVDFinetuneConfig(
        beta_m=args.beta_m if args.beta_m is not None else preset.beta_m,
        a=args.a if args.a is not None else preset.a,
        mu_max=args.mu_max,
        timenoise=not args.no_timenoise,
        fps=args.fps or preset.fps or 3,
        motion_bucket_id=preset.motion_bucket_id or 20,
        batch_size=args.batch_size,
        gradient_checkpointing=not args.no_gradient_checkpointing,
    )
    tc = TrainConfig(
        steps=args.steps,
        lr=args.lr if args.lr is not None else preset.lr,
        mixed_precision=args.mixed_precision,
        ema_decay=args.ema_decay,
        checkpoint_every=args.checkpoint_every,
        log_every=max(1, min(args.log_every, args.steps)),
        seed=args.seed,
    )
    pipe = _load(args)
    if args.videos == "synthetic":
        from i2v_leak.video_io import synthetic_clips

        clips: Any = list(
            synthetic_clips(args.num_synthetic, f, h, w, torch.Generator().manual_seed(args.seed))
        )
        n_clips = len(clips)
    else:
        paths = list_videos(args.videos)
        if not paths:
            raise ValueError(f"no clips in {args.videos}")
        n_clips = len(paths)

        def clips(step: int, generator: torch.Generator) -> torch.Tensor:
            batch = []
            while len(batch) < ft.batch_size:
                p = paths[int(torch.randint(0, len(paths), (1,), generator=generator))]
                got = list(
                    iter_video_clips(
                        [p], height=h, width=w, num_frames=f, stride=args.stride, generator=generator
                    )
                )
                if got:
                    batch.append(got[0])
            return torch.stack(batch)

    result = finetune_svd(
        pipe,
        clips,
        ft,
        tc,
        out_dir=out,
        resume=True,
        device=args.device,
        show_progress=False if args.json else None,
    )
    return {
        "out": str(out),
        "unet": str(out / "unet"),
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "final_loss": result.final_loss,
        "clips": n_clips,
        "timenoise": ft.timenoise,
        "beta_m": ft.beta_m,
        "a": ft.a,
        "mu_max": ft.mu_max,
        "history": result.history,
    }


def cmd_presets(args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import asdict

    from i2v_leak.presets import OFFICIAL_MU_MAX, PRESETS

    rows = {k: {**asdict(p), "official_mu_max": OFFICIAL_MU_MAX.get(k, p.mu_max)} for k, p in PRESETS.items()}
    return {"presets": rows}


def _human_presets(result: Any) -> str:
    cols = ["preset", "M", "steps", "eta", "cfg", "beta_m", "a", "mu_max", "lr", "size"]
    rows = [
        [
            k,
            p["M"],
            p["steps"],
            p["eta"],
            p["guidance"],
            p["beta_m"],
            p["a"],
            p["mu_max"],
            p["lr"],
            f"{p['num_frames']}x{p['height']}x{p['width']}",
        ]
        for k, p in result["presets"].items()
    ]
    notes = "\n".join(f"  {k}: {p['notes']}" for k, p in result["presets"].items())
    return format_table(cols, rows) + "\nnotes:\n" + notes


def cmd_bench(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from gen_common.bench import compare
    from gen_common.device import device_summary
    from i2v_leak.adapters import wrap_pipeline
    from i2v_leak.generation import GenerationConfig, generate_video
    from i2v_leak.stats import RunningMoments, estimate_latent_stats
    from i2v_leak.video_io import synthetic_clips, synthetic_image

    if args.model != "tiny":
        raise ValueError("bench runs on --model tiny (toy pipelines); it measures overhead, not model speed")
    pipe = _load(args)
    h, w, f = TINY_SIZE["height"], TINY_SIZE["width"], TINY_SIZE["num_frames"]
    clips = synthetic_clips(8, f, h, w, torch.Generator().manual_seed(0))
    stats = estimate_latent_stats(pipe, iter(clips), height=h, width=w, num_frames=f, show_progress=False)
    M = 100.0 if args.pipeline == "svd" else 940
    cil = wrap_pipeline(pipe, M=M, stats=stats)
    cfg = GenerationConfig(h, w, f, steps=4, prompt="a moving square")
    image = synthetic_image(h, w)
    gen = compare(
        lambda: generate_video(cil, image, cfg, 0, fix=False),
        lambda: generate_video(cil, image, cfg, 0, fix=True),
        repeats=args.repeats,
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

    mom = compare(stacked, streamed, repeats=args.repeats)
    return {
        "device": device_summary(pipe._execution_device),
        "pipeline": args.pipeline,
        "generate_stock_s": gen.baseline_s,
        "generate_fixed_s": gen.candidate_s,
        "fixed_speed_ratio": gen.ratio,
        "moments_stacked_s": mom.baseline_s,
        "moments_streamed_s": mom.candidate_s,
        "moments_ratio": mom.ratio,
        "moments_agree": math.isclose(stacked(), streamed(), rel_tol=1e-12),
    }


COMMANDS = {
    "stats": cmd_stats,
    "generate": cmd_generate,
    "compare": cmd_compare,
    "train": cmd_train,
    "presets": cmd_presets,
    "bench": cmd_bench,
}


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    result = COMMANDS[args.command](args)
    human = _human_presets if args.command == "presets" else None
    emit(result, as_json=args.json, human=human)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv, prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
