"""One library function per command, each taking its frozen config (and a RunContext): what the CLI, the demo and a
notebook call. torch is imported inside the functions so ``microdreamer --help`` stays fast."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from gen_common.atomic import atomic_write_json
from gen_common.cli import RunContext, arg

__all__ = [
    "BenchReport",
    "BenchRun",
    "ExportMeshRun",
    "GenerateReport",
    "GenerateRun",
    "bench",
    "compare_toy",
    "export_mesh",
    "generate",
]

PRESET_NAMES = (
    "auto",
    "sai",
    "imagedream",
    "imagedream-eta0",
    "mvdream",
    "toy",
    "official",
    "sai-official",
    "imagedream-official",
    "mvdream-official",
    "toy-official",
)


@dataclass(frozen=True)
class GenerateRun:
    """Image (or the offline toy scene) to 3D with SIR: Gaussians .ply, mesh, orbit GIF."""

    input: str = arg(
        "toy", help="input image (RGBA, or RGB on a plain background), or 'toy' for the CPU toy scene"
    )
    preset: str = arg(
        "auto", choices=PRESET_NAMES, help="released settings; auto: 'toy' for the toy, else 'sai'"
    )
    backend: Literal["gs", "nerf", "nerfstudio"] = arg(
        "gs", help="Gaussian splatting, the pure-torch voxel NeRF, or nerfstudio's NeRF (its own environment)"
    )
    model: str = arg(
        "", help="diffusers folder or hub id: Stable-Zero123, or the MVDream/ImageDream port (see README)"
    )
    elevation: float = arg(0.0, help="estimated elevation of the input view in degrees", min=-80, max=80)
    iterations: int = arg(0, help="outer SIR iterations incl. the initial one (0: the preset's)", min=0)
    render_size: int = arg(0, help="training render size in pixels (0: the preset's)", min=0)
    mesh_format: Literal["obj", "ply", "glb", "none"] = arg("obj", help="mesh file to write (none: skip)")
    threshold: float = arg(0.2, help="density iso-level for marching cubes", gt=0)
    resolution: int = arg(96, help="marching-cubes grid resolution", min=8)
    target_faces: int = arg(
        50_000,
        help="decimate the mesh to at most this many faces (quadric edge collapse; the release's 5e4)",
        min=1,
    )
    gif_frames: int = arg(24, help="orbit GIF frames (0: no GIF)", min=0)
    rasterizer: Literal["auto", "torch", "gsplat"] = arg("auto", help="auto: gsplat on CUDA when installed")
    filter_white: int = arg(
        512, help="render size of the release's white-Gaussian filter before export (0: skip)", min=0
    )
    clip: str = arg(
        "", help="CLIP model folder or hub id: report the paper's CLIP similarity (8 orbit renders vs input)"
    )
    prompt: str = arg("", help="text prompt for MVDream (required) and ImageDream (optional)")
    negative_prompt: str = arg(
        "release",
        help="MVDream/ImageDream negative prompt ('release': the released configs' list; '' for none)",
    )
    unet_class: str = arg(
        "",
        help="MVDream/ImageDream: replace the built-in UNet with module:Class (e.g. mv_unet:MultiViewUNetModel from "
        "the port), or 'folder' to import the .py shipped in the model folder (runs that file)",
    )
    checkpoint_every: int = arg(
        0, help="write an atomic checkpoint to OUT/checkpoints every N outer iterations (0: none)", min=0
    )
    resume: bool = arg(
        False, help="continue from the latest checkpoint in OUT/checkpoints (same settings and --seed)"
    )


@dataclass
class GenerateReport:
    preset: str
    backend: str
    iterations: int
    nfe: int
    calls: int
    seconds_sir: float
    seconds_mesh: float
    primitives: int
    heldout_error: float | None
    clip_similarity: float | None = None
    files: list[str] = field(default_factory=list)
    # outer iterations the checkpoint held (--resume); seconds_sir counts this process only
    resumed_from: int = 0


@dataclass(frozen=True)
class ExportMeshRun:
    """Gaussians (.ply from `run`) to a mesh with vertex colours (.obj/.ply/.glb)."""

    gaussians: str = arg(help="3DGS-layout .ply file", positional=True)
    mesh_format: Literal["obj", "ply", "glb"] = arg("obj", help="output format")
    threshold: float = arg(0.2, help="density iso-level", gt=0)
    resolution: int = arg(128, help="grid resolution", min=8)
    target_faces: int = arg(
        50_000, help="decimate to at most this many faces (quadric edge collapse; the release's 5e4)", min=1
    )
    texture_size: int = arg(
        0,
        help="UV texture size (0: vertex colours; the release: 1024); needs microdreamer[texture], .obj or .glb",
        min=0,
    )
    texture_source: Literal["renders", "vertex"] = arg(
        "renders", help="bake the texture from 26 Gaussian renders (as released) or from the vertex colours"
    )
    bake_size: int = arg(512, help="render size of the texture bake's views (the release's 512)", min=8)
    refine_steps: int = arg(
        0, help="stage-2 colour refinement steps against the denoiser (0: off; the release runs 30)", min=0
    )
    refine_size: int = arg(512, help="stage-2 render size (the release's 512)", min=8)
    input: str = arg(
        "toy", help="refinement guidance: 'toy' (the exact toy denoiser) or the input image (needs --model)"
    )
    model: str = arg("", help="Stable-Zero123 diffusers folder or hub id (refinement of an image's mesh)")
    elevation: float = arg(0.0, help="estimated elevation of the input view in degrees", min=-80, max=80)


@dataclass(frozen=True)
class BenchRun:
    """SIR vs SDS on the toy: diffusion calls and wall-clock to reach the same held-out-view error."""

    size: int = arg(32, help="render size", min=8)
    num_pts: int = arg(400, help="initial Gaussians", min=8)
    iterations: int = arg(11, help="SIR outer iterations incl. the initial one", min=2)
    inner_steps: int = arg(15, help="SIR reconstruction steps per iteration", min=1)
    sds_steps: int = arg(500, help="SDS optimisation steps (2 network evaluations each)", min=1)
    sds_anneal: bool = arg(
        False, help="DreamGaussian's annealed SDS timestep instead of DreamFusion's uniform one"
    )
    data_std: float = arg(
        0.05, help="std of the toy's Gaussian data model around the true views ([-1, 1] units)", gt=0
    )
    eval_every: int = arg(25, help="SDS evaluation interval (steps)", min=1)
    plot: bool = arg(True, help="write bench.png")


@dataclass
class BenchReport:
    target_error: float  # SDS's final held-out error (mean of its last 3 evaluations)
    sds_nfe: int
    sds_seconds: float
    sir_nfe_to_target: int | None
    sir_seconds_to_target: float | None
    nfe_ratio: float | None  # SDS calls / SIR calls to the same error
    time_ratio: float | None
    sir_final_error: float
    sir_nfe: int
    initial_error: float
    files: list[str] = field(default_factory=list)


def _resolve_preset(run: GenerateRun):
    from microdreamer.presets import get_preset

    name = run.preset if run.preset != "auto" else ("toy" if run.input == "toy" else "sai")
    over: dict[str, Any] = {}
    if run.iterations:
        over["total_steps"] = run.iterations
    if run.render_size:
        over["render_size"] = run.render_size
        if run.input == "toy":
            over["ref_size"] = run.render_size
    return get_preset(name, **over)


def _rasterizer(choice: str, device):
    if choice == "torch" or (choice == "auto" and device.type != "cuda"):
        return None
    from microdreamer.gsplat_adapter import gsplat_available, rasterize_gsplat

    if choice == "gsplat" or gsplat_available():
        if not gsplat_available():
            raise ImportError(
                'the gsplat rasteriser needs CUDA and gsplat: pip install "microdreamer[gsplat]"'
            )
        return rasterize_gsplat
    return None


def load_backend(name: str):
    """A representation registered in the ``microdreamer.backends`` entry-point group (the nerfstudio backend lives
    in its own environment: packages/microdreamer/envs/nerfstudio)."""
    from importlib.metadata import entry_points

    eps = {e.name: e for e in entry_points(group="microdreamer.backends")}
    if name not in eps:
        raise ImportError(
            f"the {name} backend is not installed; it needs its own environment (nerfstudio pins old timm/open-clip): "
            'pip install "./packages/microdreamer/envs/nerfstudio" into a separate venv, or `uv sync` in that folder'
        )
    return eps[name].load()


def generate(run: GenerateRun, ctx: RunContext | None = None) -> GenerateReport:
    """SIR on the toy scene (exact denoiser) or an input image (Stable-Zero123), then post-process, mesh, GIF."""
    from microdreamer.gaussians import GaussianModel
    from microdreamer.mesh import extract_mesh, save_mesh
    from microdreamer.nerf import VoxelNeRF
    from microdreamer.plots import orbit_frames, save_gif
    from microdreamer.sir import run_sir
    from microdreamer.toy import HeldOut, toy_denoiser

    ctx = RunContext.of(ctx)
    device = ctx.torch_device()
    preset = _resolve_preset(run)
    gen = ctx.generator()
    reference = None
    evaluate = None
    if run.input == "toy" and not run.model:
        denoiser = toy_denoiser()
        denoiser.scene.to(device)
        evaluate = HeldOut(denoiser, size=preset.render_size, radius=preset.radius)
        evaluate.cameras = evaluate.cameras.to(device)
    else:
        denoiser, reference, preset = _model_denoiser(run, preset, device, ctx.seed)
    if run.backend == "gs":
        model = GaussianModel.blob(preset.num_pts, generator=gen).to(device)
    elif run.backend == "nerf":
        model = VoxelNeRF(generator=gen)
        for k in model.params:
            model.params[k] = model.params[k].detach().to(device).requires_grad_(True)
    else:
        model = load_backend(run.backend)(generator=gen).to(device)
    rast = _rasterizer(run.rasterizer, device)
    checkpoint = _checkpointer(run, ctx)
    t0 = time.perf_counter()
    with ctx.bar(total=preset.total_steps, desc="SIR") as bar:
        res = run_sir(
            model,
            denoiser,
            preset,
            reference=reference,
            generator=gen,
            evaluate=evaluate,
            rasterizer=rast,
            progress=lambda i, n: bar.update(i - bar.n),
            checkpoint=checkpoint,
        )
    if run.backend == "gs" and run.filter_white:
        from microdreamer.postprocess import filter_white_gaussians

        filter_white_gaussians(model, size=run.filter_white, radius=preset.radius)
    t_sir = time.perf_counter() - t0
    files: list[str] = []
    if run.backend == "gs":
        files.append(str(model.save_ply(ctx.output("gaussians.ply"))))
    t_mesh = 0.0
    if (
        run.mesh_format != "none" and run.backend == "gs"
    ):  # the CPU mesher reads Gaussians; NeRFs get no mesh yet
        t1 = time.perf_counter()
        from microdreamer.decimate import decimate_mesh

        mesh = extract_mesh(model, threshold=run.threshold, resolution=run.resolution)
        mesh = decimate_mesh(mesh, run.target_faces)
        files.append(str(save_mesh(mesh, ctx.output(f"mesh.{run.mesh_format}"))))
        t_mesh = time.perf_counter() - t1
    if run.gif_frames:
        frames = orbit_frames(
            model, frames=run.gif_frames, size=min(128, max(64, preset.render_size)), radius=preset.radius
        )
        files.append(str(save_gif(frames, ctx.output("orbit.gif"))))
    hist = asdict(res.history) | {"t2": res.t2, "t1": res.t1}
    files.append(str(atomic_write_json(ctx.output("history.json"), hist, indent=None)))
    err = res.history.error[-1] if evaluate is not None else None
    clip_sim = None
    if run.clip:
        clip_sim = _clip_similarity(
            run.clip, model, reference.image if reference is not None else None, preset, device
        )
    return GenerateReport(
        preset.name,
        run.backend,
        preset.total_steps,
        denoiser.counter.nfe,
        denoiser.counter.calls,
        round(t_sir, 3),
        round(t_mesh, 3),
        len(model),
        err,
        clip_sim,
        files,
        (checkpoint and checkpoint.resumed_from) or 0,
    )


def _model_denoiser(run: GenerateRun, preset, device, seed: int = 0):
    """The user's denoiser for ``run --model``: Stable-Zero123 (image), ImageDream (image + optional prompt) or
    MVDream (prompt), told apart by the folder's layout; a preset made for another family is refused before any
    weights load. ``--preset auto`` picks the family's preset."""
    from types import SimpleNamespace

    from microdreamer.loop import check_family

    image = mask = None
    if run.input != "toy":
        from microdreamer.images import load_image

        image, mask = load_image(run.input, preset.ref_size)
    if not run.model:
        raise ValueError("an image input needs --model (a Stable-Zero123 diffusers folder or hub id)")
    from gen_common.checkpoint import resolve_pretrained
    from microdreamer.multiview import _require, detect_family

    _require()  # a missing extra is reported before the path is looked at
    family = detect_family(resolve_pretrained(run.model))
    if run.preset == "auto":
        preset = _resolve_preset(replace(run, preset={"zero123": "sai"}.get(family, family)))
    check_family(preset, SimpleNamespace(family=family))
    if family == "mvdream" and image is not None:
        raise ValueError(
            "MVDream is text-to-3D: give --prompt and no --input image (ImageDream takes an image)"
        )
    if family == "mvdream" and not run.prompt.strip():
        raise ValueError("MVDream is text-to-3D: give a text prompt (--prompt)")
    if family != "mvdream" and image is None:
        raise ValueError(f"the {family} model is conditioned on an image: give --input IMAGE")
    if family == "zero123":
        return (*_zero123(run.model, image, mask, run.elevation, device, seed), preset)
    from microdreamer.multiview import MultiViewDenoiser, import_unet_class
    from microdreamer.presets import RELEASE_NEGATIVE_PROMPT

    # float32 on every device, as the release runs both multi-view models
    denoiser = MultiViewDenoiser.from_pretrained(
        run.model,
        unet_class=import_unet_class(run.unet_class) if run.unet_class not in ("", "folder") else None,
        trust_remote_code=run.unet_class == "folder",
        device=device,
    )
    denoiser.generator.manual_seed(seed)
    neg = RELEASE_NEGATIVE_PROMPT if run.negative_prompt == "release" else run.negative_prompt
    denoiser.set_prompt(run.prompt, neg)
    if family == "imagedream":
        denoiser.set_reference(image.to(device))
    return denoiser, None, preset  # neither multi-view release adds reference-view terms


def _zero123(model: str, image, mask, elevation: float, device, seed: int):
    """Stable-Zero123 from ``model`` with its reference view set; its VAE posterior noise follows --seed."""
    from microdreamer.loop import Reference
    from microdreamer.zero123 import load_denoiser

    denoiser = load_denoiser(model, device=device)
    denoiser.generator.manual_seed(seed)
    denoiser.set_reference(image.to(device), elevation=elevation)
    return denoiser, Reference(image, mask, elevation)


def _checkpointer(run: GenerateRun, ctx: RunContext):
    """OUT/checkpoints for --checkpoint-every/--resume. Checkpoints of an earlier run are never replaced silently:
    without --resume they need --overwrite (then this run's replace them)."""
    if not (run.checkpoint_every or run.resume):
        return None
    from pathlib import Path

    from microdreamer.checkpoints import Checkpointer

    if run.backend == "nerfstudio":
        raise ValueError("--checkpoint-every/--resume support the gs and nerf backends, not nerfstudio yet")
    if ctx.out is None:
        raise ValueError("checkpoints are written into the output folder: give --out DIR")
    ckpt = Checkpointer(
        Path(ctx.out).expanduser() / "checkpoints", every=run.checkpoint_every, resume=run.resume
    )
    earlier = ckpt.checkpoints()
    if earlier and not run.resume:
        if not ctx.overwrite:
            raise FileExistsError(
                f"{ckpt.folder} holds checkpoints of an earlier run: pass --resume to continue it, --overwrite to "
                "start over (replacing them), or choose another --out"
            )
        for path in earlier:  # files this command wrote; a fresh run must not resume from them later
            path.unlink()
    return ckpt


def _clip_similarity(name: str, model, reference, preset, device) -> float:
    try:
        from transformers import CLIPModel
    except ImportError as exc:
        raise ImportError('CLIP similarity needs transformers: pip install "microdreamer[zero123]"') from exc
    from gen_common.checkpoint import resolve_pretrained
    from microdreamer.evaluation import clip_similarity

    if reference is None:
        raise ValueError("--clip compares renders with the input image: give --input IMAGE")
    enc = CLIPModel.from_pretrained(resolve_pretrained(name), use_safetensors=True).to(device).eval()
    return clip_similarity(model, reference.to(device), enc, radius=preset.radius)


def export_mesh(run: ExportMeshRun, ctx: RunContext | None = None) -> dict[str, Any]:
    """Gaussians → marching cubes → decimation → optional UV texture → optional stage-2 refinement → mesh file."""
    from microdreamer.decimate import decimate_mesh
    from microdreamer.gaussians import GaussianModel
    from microdreamer.mesh import extract_mesh, save_mesh

    ctx = RunContext.of(ctx)
    if run.texture_size and run.mesh_format == "ply":
        raise ValueError("a UV-textured mesh is written as .obj or .glb: use --mesh-format obj|glb")
    if run.texture_size == 1:
        raise ValueError("--texture-size must be 0 (vertex colours) or at least 2 texels")
    if run.refine_steps and run.input != "toy" and not run.model:
        raise ValueError(
            "refining an image's mesh needs --model (a Stable-Zero123 diffusers folder or hub id)"
        )
    model = GaussianModel.load_ply(run.gaussians)
    t0 = time.perf_counter()
    mesh = extract_mesh(model, threshold=run.threshold, resolution=run.resolution)
    t1 = time.perf_counter()
    faces_before = len(mesh.faces)
    mesh = decimate_mesh(mesh, run.target_faces)
    t2 = time.perf_counter()
    report: dict[str, Any] = {
        "gaussians": len(model),
        "faces_marching_cubes": faces_before,
        "seconds_marching_cubes": round(t1 - t0, 3),
        "seconds_decimate": round(t2 - t1, 3),
    }
    if run.texture_size:
        from microdreamer.texture import bake_texture

        render = None
        if run.texture_source == "renders":
            device = ctx.torch_device()
            model = model.to(device)
            render = lambda cams: model.render(cams.to(device)).image  # noqa: E731
        mesh = bake_texture(mesh, run.texture_size, render=render, render_size=run.bake_size)
        report["seconds_texture"] = round(time.perf_counter() - t2, 3)
    if run.refine_steps:
        report |= _refine(run, mesh, ctx)
        mesh = report.pop("mesh")
    if run.texture_size:
        from microdreamer.texture import save_textured_mesh

        files = save_textured_mesh(mesh, ctx.output(f"mesh.{run.mesh_format}"))
    else:
        files = [save_mesh(mesh, ctx.output(f"mesh.{run.mesh_format}"))]
    return report | {
        "vertices": len(mesh.vertices),
        "faces": len(mesh.faces),
        "watertight": mesh.edges_manifold(),
        "file": str(files[0]),
        "files": [str(f) for f in files],
    }


def _refine(run: ExportMeshRun, mesh, ctx: RunContext) -> dict[str, Any]:
    from microdreamer.refine import RefineConfig, mesh_heldout_error, refine_mesh_colors

    device = ctx.torch_device()
    reference, evaluate = None, None
    if run.input == "toy":
        from microdreamer.toy import HeldOut, toy_denoiser

        denoiser = toy_denoiser()
        denoiser.scene.to(device)
        held = HeldOut(denoiser, size=min(run.refine_size, 64))
        cams = held.cameras.to(device)
        evaluate = lambda m: mesh_heldout_error(m, cams, held.truth)  # noqa: E731
    else:
        from microdreamer.images import load_image

        image, mask = load_image(run.input, 256)
        denoiser, reference = _zero123(run.model, image, mask, run.elevation, device, ctx.seed)
    cfg = RefineConfig(steps=run.refine_steps, render_size=run.refine_size)
    with ctx.bar(total=cfg.steps, desc="stage 2") as bar:
        res = refine_mesh_colors(
            mesh,
            denoiser,
            cfg,
            reference=reference,
            generator=ctx.generator(),
            evaluate=evaluate,
            device=device,
            progress=lambda i, n: bar.update(1),
        )
    return {
        "mesh": res.mesh,
        "refine_steps": run.refine_steps,
        "refine_timestep": res.timestep,
        "refine_nfe": res.nfe,
        "seconds_refine": res.seconds,
        "heldout_l1_before": res.error_before,
        "heldout_l1_after": res.error_after,
    }


def bench(run: BenchRun, ctx: RunContext | None = None) -> BenchReport:
    """Both optimisers from the same initial Gaussians, the same exact denoiser, views and renderer."""
    return compare_toy(run, ctx)[0]


def compare_toy(run: BenchRun, ctx: RunContext | None = None):
    """``bench`` that also returns the SIR and SDS results (models and histories) for plots and meshes."""
    from microdreamer.gaussians import GaussianModel
    from microdreamer.presets import get_preset
    from microdreamer.sds import run_sds
    from microdreamer.sir import run_sir
    from microdreamer.toy import HeldOut, toy_denoiser

    ctx = RunContext.of(ctx)
    device = ctx.torch_device()
    preset = get_preset(
        "toy",
        render_size=run.size,
        ref_size=run.size,
        num_pts=run.num_pts,
        total_steps=run.iterations,
        inner_steps=run.inner_steps,
        init_steps=run.inner_steps,
    )
    den = toy_denoiser(data_std=run.data_std)
    den.scene.to(device)
    held = HeldOut(den, size=run.size, radius=preset.radius)
    held.cameras = held.cameras.to(device)
    bar = ctx.bar(total=run.iterations + run.sds_steps, desc="SIR vs SDS")
    sir_model = GaussianModel.blob(preset.num_pts, generator=ctx.generator()).to(device)
    sir = run_sir(
        sir_model, den, preset, generator=ctx.generator(1), evaluate=held, progress=lambda i, n: bar.update(1)
    )
    den.counter.reset()
    sds_model = GaussianModel.blob(preset.num_pts, generator=ctx.generator()).to(device)
    sds = run_sds(
        sds_model,
        den,
        preset,
        steps=run.sds_steps,
        anneal=run.sds_anneal,
        generator=ctx.generator(1),
        evaluate=held,
        eval_every=run.eval_every,
        progress=lambda i, n: bar.update(1),
    )
    bar.close()
    tail = sds.history.error[-3:]
    target = sum(tail) / len(tail)
    n_sir = sir.history.nfe_to_reach(target)
    s_sir = sir.history.seconds_to_reach(target)
    files = []
    if run.plot:
        from microdreamer.plots import plot_error_vs_calls

        sds_name = "SDS (annealed t)" if run.sds_anneal else "SDS (uniform t)"
        files.append(
            str(
                plot_error_vs_calls(
                    {"SIR": sir.history, sds_name: sds.history},
                    ctx.output("bench.png"),
                    title=f"toy: {run.size}px, {run.num_pts} initial Gaussians, exact denoiser",
                )
            )
        )
    report = BenchReport(
        target_error=target,
        sds_nfe=sds.history.nfe[-1],
        sds_seconds=round(sds.history.seconds[-1], 3),
        sir_nfe_to_target=n_sir,
        sir_seconds_to_target=None if s_sir is None else round(s_sir, 3),
        nfe_ratio=None if not n_sir else round(sds.history.nfe[-1] / n_sir, 2),
        time_ratio=None if not s_sir else round(sds.history.seconds[-1] / s_sir, 2),
        sir_final_error=sir.history.error[-1],
        sir_nfe=sir.history.nfe[-1],
        initial_error=sir.history.error[0],
        files=files,
    )
    return report, sir, sds
