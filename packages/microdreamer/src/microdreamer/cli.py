"""Console script ``microdreamer``: a table of commands; each is a config dataclass and a function in runs.py."""

from __future__ import annotations

from gen_common.cli import Command, main_for
from microdreamer.runs import BenchRun, ExportMeshRun, GenerateRun


def _show_bench(r) -> str:
    lines = [
        f"held-out L1: start {r.initial_error:.4f}; SDS final {r.target_error:.4f} after {r.sds_nfe} network evaluations "
        f"({r.sds_seconds:.1f} s)",
    ]
    if r.sir_nfe_to_target is None:
        lines.append(
            f"SIR did not reach it (SIR final {r.sir_final_error:.4f} after {r.sir_nfe} evaluations)"
        )
    else:
        lines.append(
            f"SIR reached it after {r.sir_nfe_to_target} evaluations ({r.sir_seconds_to_target:.1f} s): "
            f"{r.nfe_ratio}x fewer diffusion calls, {r.time_ratio}x less time"
        )
    lines += [f"wrote {f}" for f in r.files]
    return "\n".join(lines)


def _show_generate(r) -> str:
    err = "" if r.heldout_error is None else f", held-out L1 {r.heldout_error:.4f}"
    head = (
        f"{r.preset} ({r.backend}): {r.iterations} iterations, {r.nfe} network evaluations, "
        f"SIR {r.seconds_sir:.1f} s + mesh {r.seconds_mesh:.1f} s, {r.primitives} primitives{err}"
    )
    return "\n".join([head] + [f"wrote {f}" for f in r.files])


COMMANDS = [
    Command(
        "run",
        "microdreamer.runs:generate",
        GenerateRun,
        writes=("gaussians.ply", "mesh.*", "orbit.gif", "history.json"),
        out_default="microdreamer-out",
        human=_show_generate,
    ),
    Command(
        "export-mesh", "microdreamer.runs:export_mesh", ExportMeshRun, writes=("mesh.*",), out_default="."
    ),
    Command("bench", "microdreamer.runs:bench", BenchRun, writes=("bench.png",), human=_show_bench),
]

main = main_for(
    "microdreamer",
    COMMANDS,
    description=(
        "MicroDreamer: 3D generation by score-based iterative reconstruction (SIR). `run` turns an image (with a "
        "Stable-Zero123 model) or the offline toy scene into Gaussians, a mesh and an orbit GIF; `export-mesh` "
        "meshes a Gaussian .ply (marching cubes, decimation, optional stage-2 colour refinement); `bench` measures SIR against SDS on the toy (diffusion calls and time)."
    ),
)

if __name__ == "__main__":
    raise SystemExit(main())
