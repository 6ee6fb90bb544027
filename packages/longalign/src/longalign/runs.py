"""One library function per command, each taking its frozen config and a `RunContext` (the CLI, the demo and a
notebook all call these). torch and diffusers are imported inside the functions so ``longalign --help`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gen_common.cli import RunContext, arg

__all__ = [
    "BenchRun",
    "ConvertRun",
    "EncodeRun",
    "EvaluateRun",
    "SampleRun",
    "ScoreRun",
    "TrainAlignRun",
    "TrainRewardRun",
    "bench",
    "convert",
    "encode",
    "evaluate",
    "read_prompts",
    "sample",
    "score",
    "train_align_run",
    "train_reward_run",
]

MODEL_HELP = 'Stable Diffusion pipeline: "tiny" (offline toy), a local diffusers folder, or a hub id (online)'
PREF_HELP = (
    'preference model: "tiny" (offline toy CLIP), a local transformers CLIP folder, or a hub id (online)'
)


def read_prompts(prompt: str | None, prompts: Path | None) -> list[str]:
    """The prompts of a run: ``--prompt`` and/or one per non-empty line of ``--prompts FILE``."""
    out = [prompt] if prompt else []
    if prompts is not None:
        p = Path(prompts)
        if not p.is_file():
            raise FileNotFoundError(f"no prompt file at {p}")
        out += [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not out:
            raise ValueError(f"{p} holds no prompts: write one prompt per line")
    if not out:
        raise ValueError("give a prompt (--prompt TEXT) or a prompt file (--prompts FILE)")
    return out


# -- encode ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncodeRun:
    """Segment-encode long prompts; report rows kept versus plain 77-token CLIP."""

    model: str = arg("tiny", help=MODEL_HELP)
    prompt: str | None = arg(None, help="one prompt")
    prompts: Path | None = arg(None, help="a file with one prompt per line")
    max_length: int = arg(240, help="rows of the encoding (the release: 240)", min=1)
    splitter: Literal["default", "official"] = arg(
        "default", help="sentence splitter (official: the release's regex)"
    )


def encode(run: EncodeRun, ctx: RunContext | None = None) -> dict[str, Any]:
    import warnings

    import torch

    from gen_common.checkpoint import save_state_dict
    from longalign.loading import load_pipeline
    from longalign.segments import SegmentEncoder

    ctx = RunContext.of(ctx)
    prompts = read_prompts(run.prompt, run.prompts)
    pipe = load_pipeline(run.model, ctx.device, seed=ctx.seed)
    enc = SegmentEncoder.from_pipe(pipe, max_length=run.max_length, splitter=run.splitter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = enc(prompts)
    tok = pipe.tokenizer
    n_tokens = [len(tok(p, truncation=False, verbose=False).input_ids) for p in prompts]
    report = {
        "prompts": len(prompts),
        "segments": [len(s) for s in out.segments],
        "rows": out.lengths.tolist(),
        "rows_cut": out.truncated,
        "prompt_tokens": n_tokens,
        "plain_clip_tokens_dropped": [max(0, n - 77) for n in n_tokens],
        "shape": list(out.embeds.shape),
        "warnings": [str(w.message) for w in caught],
    }
    if ctx.out is not None:
        save_state_dict(
            {"embeds": out.embeds.detach().cpu().contiguous(), "lengths": out.lengths.to(torch.int64)},
            ctx.output("embeds.safetensors"),
        )
        report["file"] = str(ctx.output("embeds.safetensors"))
    return report


# -- sample -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleRun:
    """Generate images from long prompts with a stock pipeline and segment encoding; write PNGs and a contact sheet."""

    model: str = arg("tiny", help=MODEL_HELP)
    prompt: str | None = arg(None, help="one prompt")
    prompts: Path | None = arg(None, help="a file with one prompt per line")
    negative_prompt: str = arg("", help='negative prompt (encoded the same way; "" as the release)')
    scheduler: Literal["unipc", "lcm", "ddim", "pipeline"] = arg(
        "unipc", help="unipc: the paper's sampler; pipeline: keep the model's"
    )
    steps: int = arg(25, help="sampling steps (paper: UniPC 25, LCM 4)", min=1)
    guidance: float = arg(7.5, help="classifier-free guidance scale", min=0)
    lora: tuple[str, ...] = arg(
        (), help="LoRA files/folders to merge first, in order (diffusers files or release .pt)"
    )
    max_length: int = arg(240, help="rows of the segment encoding", min=1)
    splitter: Literal["default", "official"] = arg("default", help="sentence splitter")
    size: int | None = arg(None, help="image side in pixels (default: the model's)", min=8)
    dtype: str | None = arg(None, help="float32, bfloat16 or float16 (default: bf16 on CUDA)")
    t5: str | None = arg(
        None,
        help="LongSD's T5 branch: a T5 encoder folder with its tokenizer (or hub id, online); needs --adapter",
    )
    adapter: str | None = arg(None, help="the released T5 adapter folder (config.json + weights); needs --t5")


def _set_scheduler(pipe: Any, name: str) -> None:
    import diffusers

    classes = {"unipc": "UniPCMultistepScheduler", "lcm": "LCMScheduler", "ddim": "DDIMScheduler"}
    if name in classes:
        pipe.scheduler = getattr(diffusers, classes[name]).from_config(pipe.scheduler.config)


def contact_sheet(images: list[Any], captions: list[str], path: Path) -> Path:
    """A grid of images with the start of each prompt as its title (PNG)."""
    import textwrap

    from gen_common.plotting import new_figure, save_figure

    n = len(images)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = new_figure(rows, cols, size=(3.2 * cols, 3.6 * rows))
    flat = list(getattr(axes, "flat", [axes]))
    for i, ax in enumerate(flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i])
            ax.set_title("\n".join(textwrap.wrap(captions[i][:120], 36)), fontsize=7)
    return save_figure(fig, path)


def _generate(run: SampleRun, prompts: list[str], ctx: RunContext) -> list[Any]:
    """PIL images, one per prompt (seed ``ctx.seed + i``), from the run's pipeline, LoRAs and scheduler."""
    import torch

    from longalign.loading import load_pipeline
    from longalign.pipeline import LongPromptPipeline
    from longalign.training import merge_loras

    if (run.t5 is None) != (run.adapter is None):
        raise ValueError("the T5 branch needs both --t5 and --adapter (or neither)")
    pipe = load_pipeline(run.model, ctx.device, run.dtype, seed=ctx.seed)
    merge_loras(pipe, run.lora)
    _set_scheduler(pipe, run.scheduler)
    branch = None
    if run.t5 is not None:
        from longalign.loading import load_t5_branch

        branch = load_t5_branch(run.t5, run.adapter, pipe, ctx.device, max_length=run.max_length)
    long_pipe = LongPromptPipeline.from_pipe(
        pipe, max_length=run.max_length, splitter=run.splitter, branch=branch
    )
    kwargs: dict[str, Any] = {"num_inference_steps": run.steps, "guidance_scale": run.guidance}
    if run.size:
        kwargs.update(height=run.size, width=run.size)
    images = []
    for i, p in enumerate(ctx.bar(prompts, desc="sample", total=len(prompts))):
        gen = torch.Generator().manual_seed(ctx.seed + i)
        images.append(long_pipe(p, negative_prompt=run.negative_prompt, generator=gen, **kwargs).images[0])
    return images


def _save_images(images: list[Any], ctx: RunContext) -> list[str]:
    from gen_common.atomic import atomic_path

    files = []
    for i, img in enumerate(images):
        with atomic_path(ctx.output(f"images/sample-{i:03d}.png")) as tmp:
            img.save(tmp, format="PNG")
        files.append(str(ctx.output(f"images/sample-{i:03d}.png")))
    return files


def sample(run: SampleRun, ctx: RunContext | None = None) -> dict[str, Any]:
    ctx = RunContext.of(ctx)
    prompts = read_prompts(run.prompt, run.prompts)
    images = _generate(run, prompts, ctx)
    files = _save_images(images, ctx) if ctx.out is not None else []
    report: dict[str, Any] = {"images": len(images), "size": list(images[0].size), "files": files}
    if ctx.out is not None:
        report["contact_sheet"] = str(contact_sheet(images, prompts, ctx.output("contact_sheet.png")))
    return report


# -- evaluate ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluateRun(SampleRun):
    """Evaluate a pipeline on a prompt file: generate one image per prompt, score long-text alignment with each
    preference model (relevant, irrelevant, reweighted and plain scores), FID with your feature extractor, and a
    contact sheet of prompts and images."""

    preference: tuple[str, ...] = arg(("tiny",), help=PREF_HELP + "; several allowed, each is reported")
    weight: float = arg(0.3, help="w in relevant + w * irrelevant (the paper: 0.3)")
    fid_extractor: str | None = arg(
        None,
        help="FID features: 'package.module:factory' returning a torch module, images in [0, 1] -> (N, D)",
    )
    fid_weights: Path | None = arg(None, help="safetensors weights for --fid-extractor (loaded strictly)")
    fid_reference: Path | None = arg(
        None, help="reference: pytorch-fid .npz (mu, sigma) or a folder of reference images"
    )


def evaluate(run: EvaluateRun, ctx: RunContext | None = None) -> dict[str, Any]:
    import numpy as np
    import torch

    from gen_common.atomic import atomic_write_json
    from longalign.loading import load_preference

    ctx = RunContext.of(ctx)
    prompts = read_prompts(run.prompt, run.prompts)
    if len(set(run.preference)) != len(run.preference):
        raise ValueError("a preference model is named twice in --preference: name each once")
    if (run.fid_extractor is None) != (run.fid_reference is None):
        raise ValueError("FID needs both --fid-extractor and --fid-reference (or neither)")
    extractor, ref = None, None
    if run.fid_extractor is not None:  # checked before the (long) generation: a bad spec or file fails fast
        from longalign.evaluation import load_extractor

        extractor = load_extractor(run.fid_extractor, run.fid_weights, ctx.device)
        ref = run.fid_reference
        if ref is not None and Path(ref).is_dir():
            ref = _load_images(Path(ref))[1]
        elif ref is not None and not Path(ref).is_file():
            raise FileNotFoundError(f"no FID reference (.npz or image folder) at {ref}")
    pil = _generate(run, prompts, ctx)
    images = torch.from_numpy(
        np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0 for im in pil])
    )
    images = images.permute(0, 3, 1, 2)
    report: dict[str, Any] = {"prompts": len(prompts), "size": list(pil[0].size), "weight": run.weight}
    alignment = {}
    for i, name in enumerate(run.preference):
        pm = load_preference(name, ctx.device, weight=run.weight, splitter=run.splitter, seed=ctx.seed)
        with torch.no_grad():
            out = pm(images.to(pm.device), prompts, generator=ctx.generator(i))
        plain = out.relevant + out.irrelevant
        alignment[name] = {
            "mean_score": float(out.score.mean()),
            "mean_plain": float(plain.mean()),
            "mean_relevant": float(out.relevant.mean()),
            "mean_irrelevant": float(out.irrelevant.mean()),
            "per_prompt": [float(s) for s in out.score],
        }
    report["alignment"] = alignment
    if extractor is not None:
        from longalign.evaluation import fid_of_images

        report["fid"], stats = fid_of_images(images, ref, extractor)
        if ctx.out is not None:
            report["fid_stats"] = str(stats.save_stats(ctx.output("fid_stats.npz"), overwrite=True))
    if ctx.out is not None:
        report["files"] = _save_images(pil, ctx)
        report["contact_sheet"] = str(contact_sheet(pil, prompts, ctx.output("contact_sheet.png")))
        atomic_write_json(ctx.output("evaluation.json"), report)
    return report


# -- score ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoreRun:
    """Score images against long prompts with a decomposed preference model (relevant, irrelevant, reweighted)."""

    images: Path = arg(positional=True, help="a folder of images (sorted by name) or one image")
    prompts: Path = arg(positional=True, help="a file with one prompt per line, one per image")
    preference: str = arg("tiny", help=PREF_HELP)
    weight: float = arg(0.3, help="w in relevant + w * irrelevant (1: the plain score)")
    direction: Literal["batch", "ema"] = arg(
        "batch", help="common text direction: the batch's mean, or an EMA"
    )
    splitter: Literal["default", "official"] = arg(
        "default", help="sentence splitter for segment text features"
    )


def _load_images(path: Path) -> tuple[list[Path], Any]:
    import numpy as np
    import torch
    from PIL import Image

    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
    elif p.is_file():
        files = [p]
    else:
        raise FileNotFoundError(f"no image or folder at {p}")
    if not files:
        raise ValueError(f"{p} holds no .png/.jpg/.webp images")
    arrs = []
    for f in files:
        try:
            arrs.append(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255.0)
        except Exception as exc:
            raise ValueError(f"cannot read image {f} ({type(exc).__name__})") from exc
    if len({a.shape for a in arrs}) != 1:
        raise ValueError("images differ in size; resize them to one size first")
    return files, torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2)


def score(run: ScoreRun, ctx: RunContext | None = None) -> dict[str, Any]:
    import torch

    from gen_common.atomic import atomic_write_json
    from longalign.loading import load_preference

    ctx = RunContext.of(ctx)
    prompts = read_prompts(None, run.prompts)
    files, images = _load_images(run.images)
    if len(prompts) != len(files):
        raise ValueError(f"{len(files)} images but {len(prompts)} prompts: give one prompt per image")
    pm = load_preference(
        run.preference,
        ctx.device,
        weight=run.weight,
        direction=run.direction,
        splitter=run.splitter,
        seed=ctx.seed,
    )
    with torch.no_grad():
        out = pm(images.to(pm.device), prompts, generator=ctx.generator())
    rows = [
        {"image": f.name, "score": float(s), "relevant": float(r), "irrelevant": float(i)}
        for f, s, r, i in zip(files, out.score, out.relevant, out.irrelevant)
    ]
    report = {
        "images": len(files),
        "weight": run.weight,
        "mean_score": float(out.score.mean()),
        "mean_relevant": float(out.relevant.mean()),
        "mean_irrelevant": float(out.irrelevant.mean()),
        "per_image": rows,
    }
    if ctx.out is not None:
        atomic_write_json(ctx.output("scores.json"), report)
    return report


# -- training ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainRewardRun:
    """Stage 2: LoRA fine-tuning on the reweighted decomposed preference reward (checkpoints and resumes)."""

    prompts: Path = arg(positional=True, help="training prompts, one per line")
    model: str = arg("tiny", help=MODEL_HELP)
    preference: str = arg("tiny", help=PREF_HELP)
    reweight: float = arg(0.3, help="w: reward = relevant + w * irrelevant (paper 0.3; 1 = plain score)")
    direction: Literal["batch", "ema"] = arg("batch", help="common text direction")
    init_lora: tuple[str, ...] = arg((), help="stage-1 LoRAs to merge first (diffusers files or release .pt)")
    steps: int = arg(100, help="optimizer steps", min=1)
    lr: float = arg(3e-5, help="AdamW learning rate (release 3e-5)", gt=0)
    batch_size: int = arg(8, help="prompts per step and process (release: 8 per GPU)", min=1)
    rank: int = arg(32, help="LoRA rank", min=1)
    alpha: float | None = arg(None, help="LoRA alpha (default: rank, scale 1)")
    dropout: float = arg(0.1, help="LoRA dropout", min=0, lt=1)
    guidance: float = arg(7.5, help="CFG scale of the rollout", min=0)
    stride: int = arg(20, help="DDIM grid spacing (20: 50 steps)", min=1)
    grad_every: int = arg(10, help="gradients at grid[r::grad_every]", min=1)
    checkpointing: bool = arg(True, help="gradient checkpointing")
    sampler: Literal["ddim", "lcm"] = arg(
        "ddim", help="ddim: 50-step CFG rollout; lcm: the 4-step LCM variant"
    )
    checkpoint_every: int = arg(50, help="steps between checkpoints", min=0)
    warmup_steps: int = arg(0, help="linear lr warmup, in optimizer steps (the release: 2000)", min=0)
    max_length: int = arg(240, help="rows of the segment encoding (and of the T5 branch)", min=1)
    dtype: str | None = arg(None, help="model dtype (default: bf16 on CUDA)")
    t5: str | None = arg(
        None,
        help="LongSD's T5 branch (frozen, as the release's stage 2): a T5 encoder folder with its tokenizer; "
        "needs --adapter",
    )
    adapter: str | None = arg(
        None, help="the stage-1 adapter folder (train-align's OUT/adapter, or the released one); needs --t5"
    )


def _train_config(base: Any, run: TrainRewardRun | TrainAlignRun, ctx: RunContext) -> Any:
    """The stage's release optimiser settings (`training.REWARD_TRAIN` / `ALIGN_TRAIN`) with the command's flags."""
    from dataclasses import replace

    return replace(
        base,
        steps=run.steps,
        lr=run.lr,
        checkpoint_every=run.checkpoint_every,
        warmup_steps=run.warmup_steps,
        seed=ctx.seed,
    )


def train_reward_run(run: TrainRewardRun, ctx: RunContext | None = None) -> dict[str, Any]:

    from gen_common.seeding import seed_everything
    from longalign.loading import load_pipeline, load_preference
    from longalign.lora import LoraSpec
    from longalign.reward import RewardConfig
    from longalign.segments import SegmentEncoder
    from longalign.training import REWARD_TRAIN, train_reward

    ctx = RunContext.of(ctx)
    if (run.t5 is None) != (run.adapter is None):
        raise ValueError("the T5 branch needs both --t5 and --adapter (or neither)")
    prompts = read_prompts(None, run.prompts)
    seed_everything(ctx.seed)
    pipe = load_pipeline(run.model, ctx.device, run.dtype, seed=ctx.seed)
    branch = None
    if run.t5 is not None:
        from longalign.loading import load_t5_branch

        branch = load_t5_branch(run.t5, run.adapter, pipe, ctx.device, max_length=run.max_length)
    pref = load_preference(
        run.preference, ctx.device, weight=run.reweight, direction=run.direction, seed=ctx.seed
    )
    out = ctx.output("checkpoints") if ctx.out is not None else None
    cfg = _train_config(REWARD_TRAIN, run, ctx)
    _, result = train_reward(
        pipe,
        prompts,
        pref,
        reward=RewardConfig(
            guidance_scale=run.guidance,
            stride=run.stride,
            grad_every=run.grad_every,
            reweight=run.reweight,
            use_checkpoint=run.checkpointing,
            unet_checkpointing=run.checkpointing,
            batch_size=run.batch_size,
            sampler=run.sampler,
        ),
        lora=LoraSpec(rank=run.rank, alpha=run.alpha, dropout=run.dropout),
        config=cfg,
        encoder=SegmentEncoder.from_pipe(pipe, max_length=run.max_length, branch=branch),
        init_loras=run.init_lora,
        out_dir=out,
        device=ctx.device,
        progress=ctx.progress,
    )
    report: dict[str, Any] = {
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "first_score": result.history[0].get("score") if result.history else None,
        "last_score": result.history[-1].get("score") if result.history else None,
        "history": result.history,
    }
    if out is not None:
        from longalign.lora import save_lora

        path = ctx.output("lora/pytorch_lora_weights.safetensors")
        save_lora(pipe.unet, path.parent, overwrite=True)
        report["lora"] = str(path)
        _plot_history(result.history, ctx.output("reward_curve.png"))
    return report


def _plot_history(history: list[dict[str, float]], path: Path) -> None:
    from gen_common.plotting import new_figure, save_figure

    fig, ax = new_figure(size=(5, 3.2))
    steps = [h["step"] for h in history]
    for key in ("score", "relevant", "irrelevant"):
        if history and key in history[0]:
            ax.plot(steps, [h[key] for h in history], label=key)
    ax.set_xlabel("step")
    ax.legend()
    save_figure(fig, path)


@dataclass(frozen=True)
class TrainAlignRun:
    """Stage 1: LoRA (and with --t5 the T5 adapter, as LongSD) on ε-MSE over (image, long caption) pairs with
    caption dropout (checkpoints and resumes); writes lora/ and, with --t5, adapter/ for `sample --t5 --adapter`."""

    data: Path = arg(positional=True, help="a folder of images, each with a same-named .txt caption")
    model: str = arg("tiny", help=MODEL_HELP)
    steps: int = arg(1000, help="optimizer steps", min=1)
    lr: float = arg(3e-5, help="AdamW learning rate (release 3e-5)", gt=0)
    batch_size: int = arg(4, help="pairs per step", min=1)
    caption_dropout: float = arg(0.1, help="probability of training on the empty caption", min=0, max=1)
    rank: int = arg(32, help="LoRA rank", min=1)
    dropout: float = arg(0.1, help="LoRA dropout", min=0, lt=1)
    size: int | None = arg(None, help="training image side (default: the model's)", min=8)
    checkpoint_every: int = arg(100, help="steps between checkpoints", min=0)
    warmup_steps: int = arg(0, help="linear lr warmup, in optimizer steps (the release: 2000)", min=0)
    max_length: int = arg(240, help="rows of the segment encoding (and of the T5 branch)", min=1)
    t5: str | None = arg(
        None,
        help="train LongSD's T5 adapter too: a T5 encoder folder with its tokenizer (or hub id, online); T5 stays frozen",
    )
    adapter: str | None = arg(
        None,
        help="adapter folder to start from (the release starts from LaVi-Bridge's); default: a fresh adapter",
    )
    adapter_width: int = arg(896, help="inner width of a fresh adapter (LaVi-Bridge: 896)", min=1)


def _load_pairs(folder: Path, side: int) -> tuple[Any, list[str]]:
    import torch.nn.functional as F

    p = Path(folder)
    if not p.is_dir():
        raise FileNotFoundError(f"no data folder at {p}")
    files, images = _load_images(p) if any(p.iterdir()) else ([], None)
    captions = []
    for f in files:
        cap = f.with_suffix(".txt")
        if not cap.is_file():
            raise ValueError(f"{f.name} has no caption file {cap.name}")
        captions.append(cap.read_text(encoding="utf-8").strip())
    if not captions:
        raise ValueError(f"{p} holds no image/caption pairs")
    return F.interpolate(
        images, size=(side, side), mode="bilinear", antialias=True, align_corners=False
    ), captions


def train_align_run(run: TrainAlignRun, ctx: RunContext | None = None) -> dict[str, Any]:

    from gen_common.seeding import seed_everything
    from longalign.loading import load_pipeline
    from longalign.lora import LoraSpec, save_lora
    from longalign.segments import SegmentEncoder
    from longalign.training import ALIGN_TRAIN, train_align

    ctx = RunContext.of(ctx)
    if run.adapter is not None and run.t5 is None:
        raise ValueError("--adapter needs --t5 (the T5 encoder the adapter reads)")
    seed_everything(ctx.seed)
    pipe = load_pipeline(run.model, ctx.device, seed=ctx.seed)
    side = run.size or pipe.unet.config.sample_size * 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    images, captions = _load_pairs(run.data, side)
    branch = None
    if run.t5 is not None:
        from longalign.loading import load_t5_branch

        branch = load_t5_branch(
            run.t5,
            run.adapter,
            pipe,
            ctx.device,
            max_length=run.max_length,
            adapter_width=run.adapter_width,
            seed=ctx.seed,
        )
    out = ctx.output("checkpoints") if ctx.out is not None else None
    cfg = _train_config(ALIGN_TRAIN, run, ctx)
    _, result = train_align(
        pipe,
        images,
        captions,
        batch_size=run.batch_size,
        caption_dropout=run.caption_dropout,
        lora=LoraSpec(rank=run.rank, dropout=run.dropout),
        config=cfg,
        encoder=SegmentEncoder.from_pipe(pipe, max_length=run.max_length),
        branch=branch,
        out_dir=out,
        device=ctx.device,
        progress=ctx.progress,
    )
    report: dict[str, Any] = {
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "final_loss": result.final_loss,
    }
    if out is not None:
        path = ctx.output("lora/pytorch_lora_weights.safetensors")
        save_lora(pipe.unet, path.parent, overwrite=True)
        report["lora"] = str(path)
        if branch is not None:
            from longalign.t5branch import save_adapter

            report["adapter"] = str(save_adapter(branch.adapter, ctx.output("adapter"), overwrite=True))
    return report


# -- convert --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvertRun:
    """Convert a released LongSD lora_vis.pt (flat fp16 up/down list) into a diffusers LoRA file for the model."""

    release_lora: Path = arg(positional=True, help="the release's lora_vis.pt (or sd15-reward-*.pt)")
    model: str = arg("tiny", help=MODEL_HELP + " (its UNet defines the module order)")


def convert(run: ConvertRun, ctx: RunContext | None = None) -> dict[str, Any]:
    from longalign.loading import load_pipeline
    from longalign.lora import load_release_lora, release_to_peft, write_lora_file

    ctx = RunContext.of(ctx)
    tensors = load_release_lora(run.release_lora)
    pipe = load_pipeline(run.model, "cpu", seed=ctx.seed)
    sd, cfg = release_to_peft(pipe.unet, tensors)
    report: dict[str, Any] = {"pairs": len(tensors) // 2, "rank": cfg["r"], "tensors": len(sd)}
    if ctx.out is not None:
        path = ctx.output("lora/pytorch_lora_weights.safetensors")
        write_lora_file(path, sd, cfg, overwrite=True)
        report["file"] = str(path)
    return report


# -- bench ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchRun:
    """Batched vs per-segment encoding speed; reward-step time and memory with vs without checkpointing."""

    model: str = arg("tiny", help=MODEL_HELP)
    preference: str = arg("tiny", help=PREF_HELP)
    sentences: int = arg(10, help="sentences in the benchmark prompt", min=1)
    text_encoder: Literal["model", "sd15"] = arg(
        "model",
        help="encoder for the encoding bench: the model's own, or SD 1.5's full-size CLIP-L text encoder "
        "(random weights from its config, nothing downloaded)",
    )
    repeats: int = arg(5, help="timed repeats (medians)", min=1)
    reward: bool = arg(True, help="also benchmark one reward step with and without checkpointing")
    stride: int = arg(20, help="DDIM grid spacing of the reward step", min=1)
    dtype: str | None = arg(None, help="model dtype (default: bf16 on CUDA)")


def bench(run: BenchRun, ctx: RunContext | None = None) -> dict[str, Any]:
    from longalign.bench import bench_encoding, bench_reward_step
    from longalign.loading import load_pipeline

    ctx = RunContext.of(ctx)
    pipe = load_pipeline(run.model, ctx.device, run.dtype, seed=ctx.seed)
    report: dict[str, Any] = {"device": str(ctx.torch_device())}
    text_encoder = None
    if run.text_encoder == "sd15":
        from longalign.bench import sd15_text_encoder

        te = pipe.text_encoder
        text_encoder = sd15_text_encoder(ctx.seed, te.device, te.dtype)
    report["encoding"] = bench_encoding(
        pipe, sentences=run.sentences, repeats=run.repeats, text_encoder=text_encoder
    )
    if run.reward:
        from longalign.loading import load_preference

        pref = load_preference(run.preference, ctx.device, seed=ctx.seed)
        report["reward_step"] = bench_reward_step(pipe, pref, stride=run.stride, seed=ctx.seed)
    return report
