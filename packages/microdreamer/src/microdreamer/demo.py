"""The tour's demo: the exact-denoiser toy (a small scene of coloured Gaussians) reconstructed by SIR and by SDS on
the CPU with the same denoiser, views and renderer; held-out error vs diffusion calls; the SIR result meshed and
orbited."""

from __future__ import annotations

from pathlib import Path

from gen_common.cli import RunContext
from gen_common.demo import DemoContext, DemoResult, Table
from microdreamer.runs import BenchRun, compare_toy

SMALL = BenchRun(size=20, num_pts=200, iterations=7, inner_steps=15, sds_steps=150, eval_every=25)
LARGE = BenchRun(size=64, num_pts=2000, iterations=21, inner_steps=15, sds_steps=1000, eval_every=50)


def run_demo(ctx: DemoContext) -> DemoResult:
    from microdreamer.mesh import extract_mesh, save_mesh
    from microdreamer.plots import orbit_frames, save_gif

    cfg = SMALL if ctx.scale == "small" else LARGE
    rc = RunContext(
        device=str(ctx.device), seed=ctx.seed, out=ctx.out_dir, overwrite=True, progress=ctx.progress
    )
    report, sir, sds = compare_toy(cfg, rc)
    mesh = extract_mesh(sir.model, threshold=0.2, resolution=48 if ctx.scale == "small" else 128)
    save_mesh(mesh, ctx.path("toy_sir_mesh.obj"))
    gif = save_gif(orbit_frames(sir.model, frames=12, size=64), ctx.path("toy_sir_orbit.gif"))
    rows = [
        ["SIR", sir.history.nfe[-1], round(sir.history.seconds[-1], 2), round(sir.history.error[-1], 4)],
        ["SDS", sds.history.nfe[-1], round(sds.history.seconds[-1], 2), round(sds.history.error[-1], 4)],
    ]
    return DemoResult(
        title="MicroDreamer: SIR vs SDS on an exact-denoiser toy",
        summary=(
            f"SIR reaches SDS's final held-out error ({report.target_error:.4f}) after {report.sir_nfe_to_target} "
            f"diffusion evaluations vs SDS's {report.sds_nfe} ({report.nfe_ratio}x fewer calls, {report.time_ratio}x "
            f"less time). Mesh: {len(mesh.faces)} faces, watertight={mesh.edges_manifold()}; orbit GIF in {gif.name}."
        ),
        metrics={
            "nfe_ratio": report.nfe_ratio,
            "time_ratio": report.time_ratio,
            "sds_final_error": report.target_error,
            "sir_final_error": report.sir_final_error,
            "mesh_faces": len(mesh.faces),
            "mesh_watertight": mesh.edges_manifold(),
        },
        tables=[Table("final state", ["method", "network evaluations", "seconds", "held-out L1"], rows)],
        figures=[*(Path(f) for f in report.files), gif],
        headline={
            "claim": "score-based iterative reconstruction (SIR) reaches SDS's quality with 5-20x fewer "
            "diffusion-network evaluations",
            "paper": "5-20x faster than SDS for NeRF; ~20 s for a 3DGS mesh on an A100",
            "measured": f"SIR reaches SDS's final held-out error after {report.sir_nfe_to_target} evaluations vs "
            f"SDS's {report.sds_nfe}: {report.nfe_ratio}x fewer calls, {report.time_ratio}x less time",
            "reproduces": report.nfe_ratio >= 5,
            "reason": "exact-denoiser toy (a small scene of coloured Gaussians), the same renderer and denoiser "
            "for both methods" + ("" if report.nfe_ratio >= 5 else "; fewer than 5x at this size"),
        },
    )
