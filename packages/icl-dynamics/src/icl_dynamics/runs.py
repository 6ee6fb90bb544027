"""What each ``icl-dynamics`` command does, as library functions: one frozen config in, one report out.

The console script (`icl_dynamics.cli`), the tour's demo and a notebook call the same functions::

    from gen_common.cli import RunContext
    from icl_dynamics.runs import TrainRun, train

    report = train(TrainRun(x1="sparse", d=2, T=8, m=200), RunContext(out="runs/one"))

Files are written only through ``ctx.output(name)`` (the shared output-folder policy). torch is imported inside
the functions, so that ``icl-dynamics --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gen_common.cli import RunContext, arg
from icl_dynamics.config import GDConfig

__all__ = [
    "BenchRun",
    "PlotRun",
    "SweepRun",
    "TheoryRun",
    "TrainRun",
    "bench",
    "plot",
    "sweep",
    "theory",
    "train",
]

DType = Literal["complex64", "complex128"]
FIGURES = ("ab_*.png", "ratio_*.png", "mse_*.png", "heatmap_*.png", "summary_ab.png")
TRAIN_WRITES = ("model/config.json", "model/model.safetensors", "history.json", *FIGURES)

# Below this many prefix-Gram entries per epoch (m·T·(2d)²) one CPU thread is faster: the matrices are too
# small for threads to pay for their synchronisation, and on a busy machine several threads thrash (measured:
# the issue's `train --d 3 --T 20 --m 1000` took 9.7 s on one thread, 35.6 s on two, load ~6 on 2 cores).
SMALL_WORK = 20_000_000

_THREADS_HELP = "torch CPU threads (0: one thread for small problems, torch's default for large ones)"


# --- configs ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _X1Args:
    x1: Literal["gaussian", "sparse", "ones", "custom"] = arg("gaussian", help="family of the first token")
    sigma: float | None = arg(None, help="standard deviation of the gaussian family (default 1)", gt=0)
    c: float | None = arg(None, help="magnitude of the sparse family's non-zero entry (default 1)", gt=0)
    sampler: str | None = arg(
        None, help="custom family: a function (n, d, generator) -> (n, d) tensor", metavar="MODULE:FUNC"
    )
    d: int = arg(5, help="dimension d", min=1)
    T: int = arg(100, help="sequence length T", min=3)


@dataclass(frozen=True)
class TheoryRun(_X1Args):
    """Closed-form predictions: moments, ab*, its T→∞ limit, ratio, MSE, recovery (Theorem 4)."""

    mc_samples: int = arg(200_000, help="Monte Carlo draws for a custom sampler's moments", min=1)


@dataclass(frozen=True)
class TrainRun(_X1Args):
    """Full-batch GD until converged; compare ab with the closed form.

    With --out, writes the model (model/), history.json and the PNG figures there.
    """

    d: int = arg(3, help="dimension d", min=1)
    T: int = arg(20, help="sequence length T", min=3)
    m: int = arg(1000, help="training sequences", min=1)
    m_test: int = arg(2000, help="test sequences for ratio/MSE at the last position (0: none)", min=0)
    a0: float = arg(0.5, help="initial a (W^KQ[d:, :d] = a0 I)")
    b0: float = arg(1.5, help="initial b (W^PV[:, :d] = b0 I)")
    dtype: DType = arg("complex64", help="parameter/data precision")
    balanced: bool = arg(
        False,
        help="variance-reduced training data (Gauss-Hermite x1 with the Gaussian's moments; balanced sparse)",
    )
    threads: int = arg(0, help=_THREADS_HELP, min=0)
    gd: GDConfig = field(default_factory=GDConfig)


@dataclass(frozen=True)
class SweepRun:
    """The Appendix-B grid (families × scales × inits), resumable per run (OUT/runs/*.json, summary.csv).

    The runs' seed is --seed + 1 (the default gives the paper's seed 1).
    """

    families: tuple[str, ...] = arg(
        ("gaussian", "sparse", "ones"), help="x1 families: gaussian, sparse, ones"
    )
    lr_mode: Literal["paper", "auto"] = arg(
        "paper", help="paper: Appendix-B rates and epochs; auto: stable rate until converged"
    )
    d: int = arg(5, help="dimension d", min=1)
    T: int = arg(100, help="sequence length T", min=3)
    m: int = arg(10_000, help="training sequences", min=1)
    m_test: int = arg(10_000, help="test sequences", min=0)
    epochs: int | None = arg(None, help="override the epochs (paper mode) or the cap (auto mode)", min=1)
    dtype: DType = arg("complex64", help="parameter/data precision")
    scales: tuple[float, ...] | None = arg(
        None, help="only these scales of each family (default: the paper's)", gt=0
    )
    masked: bool = arg(False, help="also run all-ones x1 with masked off-diagonal gradients (paper's RQ3)")
    balanced: bool = arg(False, help="variance-reduced training data (Gauss-Hermite x1; balanced sparse)")
    resume: bool = arg(True, help="resume the runs in OUT/runs (--no-resume --overwrite redoes them)")
    threads: int = arg(0, help=_THREADS_HELP, min=0)


@dataclass(frozen=True)
class PlotRun:
    """PNG figures (ab dynamics, ratio/MSE, all-ones heatmaps) from a sweep folder (--out default: RUNS/figures)."""

    runs: Path = arg(help="the sweep's --out folder")


@dataclass(frozen=True)
class BenchRun:
    """Time the O(T) cumulative-sum training against the direct O(T^2) one."""

    d: int = arg(5, help="dimension d", min=1)
    T: int = arg(100, help="sequence length T", min=3)
    m: int = arg(10_000, help="training sequences", min=1)
    epochs: int = arg(200, help="epochs timed for the O(T) implementation", min=1)
    baseline_epochs: int = arg(
        10, help="epochs timed for the O(T^2) baselines (extrapolated per epoch)", min=1
    )
    threads: int = arg(2, help="torch CPU threads", min=1)
    dtype: DType = arg("complex64", help="parameter/data precision")


@dataclass
class SweepReport:
    out: Path
    runs: int
    resumed: int
    rows: list[dict[str, Any]]


@dataclass
class PlotReport:
    figures: list[Path]
    runs: int


# --- helpers ------------------------------------------------------------------------------------------------------


def _dist(run: _X1Args) -> Any:
    from icl_dynamics.data import X1Dist

    if run.x1 == "gaussian":
        return X1Dist.gaussian(1.0 if run.sigma is None else run.sigma)
    if run.x1 == "sparse":
        return X1Dist.sparse(1.0 if run.c is None else run.c)
    if run.x1 == "ones":
        return X1Dist.ones()
    if not run.sampler or ":" not in run.sampler:
        raise ValueError(
            "--x1 custom needs --sampler MODULE:FUNC (a function (n, d, generator) -> (n, d) tensor)"
        )
    module, _, func = run.sampler.partition(":")
    try:
        fn = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import sampler {run.sampler!r}: {exc}") from exc
    return X1Dist.custom(fn, name=run.sampler)


def _device(ctx: RunContext) -> Any:
    """The context's device, an unavailable one reported as a user error (one line, exit 2)."""
    try:
        return ctx.torch_device()
    except RuntimeError as exc:
        raise ValueError(str(exc)) from exc


def _threads(threads: int, m: int, T: int, d: int, device: Any) -> int | None:
    """``threads`` (0: one thread for small problems on the CPU, torch's default otherwise)."""
    if threads < 0:
        raise ValueError(f"--threads must be >= 0, got {threads}")
    if threads > 0:
        return threads
    return 1 if device.type == "cpu" and m * T * (2 * d) ** 2 < SMALL_WORK else None


# --- commands -----------------------------------------------------------------------------------------------------


def theory(run: TheoryRun, ctx: RunContext | None = None) -> dict[str, Any]:
    """The closed-form fixed point ab* = (T−2)m₄ / [(T−2)m₆ + (d−1)m₂₄H_{T−2}] and what follows from it."""
    from gen_common.seeding import make_generator
    from icl_dynamics.theory import moments, predict_theory

    ctx = RunContext.of(ctx)
    dist = _dist(run)
    mom = moments(dist, run.d, n_mc=run.mc_samples, generator=make_generator(ctx.seed))
    pred = predict_theory(mom, run.d, run.T)
    return {"x1": dist.label, "d": run.d, "T": run.T, "moments_source": mom.source, **pred.as_dict()}


def train(run: TrainRun, ctx: RunContext | None = None) -> dict[str, Any]:
    """Full-batch GD (Appendix B) from (a0, b0) until ab settles; trained ab vs the closed form."""
    from gen_common.atomic import atomic_write_json
    from gen_common.device import num_threads
    from gen_common.seeding import make_generator
    from icl_dynamics import training
    from icl_dynamics.data import generate_sequences
    from icl_dynamics.model import LinearSelfAttention, LSAConfig
    from icl_dynamics.plotting import plot_records
    from icl_dynamics.sweep import RunSpec
    from icl_dynamics.theory import empirical_moments, moments, predict_theory

    ctx = RunContext.of(ctx)
    if ctx.out is not None:  # refuse before training, not after
        from gen_common.cli import check_outputs

        check_outputs(ctx.out, TRAIN_WRITES, overwrite=ctx.overwrite)
    device = _device(ctx)
    dist = _dist(run)
    gen = make_generator(ctx.seed)
    x = generate_sequences(
        run.m, run.T, run.d, dist, generator=gen, dtype=run.dtype, device=device, balanced=run.balanced
    )
    x_test = None
    if run.m_test > 0:
        x_test = generate_sequences(
            run.m_test, run.T, run.d, dist, generator=gen, dtype=run.dtype, device=device
        )
    model = LinearSelfAttention(LSAConfig(run.d, run.a0, run.b0, run.dtype)).to(device)
    cfg = dataclasses.replace(run.gd, eval_every=1 if x_test is not None else 0)
    with num_threads(_threads(run.threads, run.m, run.T, run.d, device)):
        result = training.train(model, x, config=cfg, x_test=x_test, progress=ctx.progress)
    pred = predict_theory(moments(dist, run.d, generator=make_generator(ctx.seed)), run.d, run.T)
    out: dict[str, Any] = {"x1": dist.label, "d": run.d, "T": run.T, "m": run.m, **result.summary()}
    out["predicted_ab"] = pred.predicted_ab
    # The closed form at the training sample's own moments: what finite-m sampling noise moves ab* to.
    out["predicted_ab_sample"] = predict_theory(empirical_moments(x[:, 0]), run.d, run.T).predicted_ab
    out["predicted_ab_limit"] = pred.predicted_ab_limit
    out["rel_error_ab"] = out["ab"] / pred.predicted_ab - 1
    out["predicted_ratio"] = pred.predicted_ratio
    out["predicted_mse_last"] = pred.predicted_mse_last
    out["assumption_holds"] = pred.assumption_holds
    out["device"] = str(device)
    if ctx.out is not None:
        spec = RunSpec(
            dist.family,
            dist.scale,
            run.a0,
            run.b0,
            run.d,
            run.T,
            run.m,
            run.m_test,
            run.gd.lr,
            run.gd.max_epochs,
            run.gd.grad_mask,
            run.dtype,
            ctx.seed,
        )
        record = {
            "run_id": "train",
            "spec": dataclasses.asdict(spec),
            "theory": pred.as_dict(),
            "summary": out,
            "history": result.history,
            "final": {
                k: {"real": p.detach().cpu().real.tolist(), "imag": p.detach().cpu().imag.tolist()}
                for k, p in (("wkq", model.wkq), ("wpv", model.wpv))
            },
        }

        def write(folder: Path) -> None:
            model.save_pretrained(folder / "model", overwrite=True)
            atomic_write_json(folder / "history.json", record)
            plot_records([record], folder)

        paths = ctx.publish(write)
        out["figures"] = [str(p) for p in paths if p.suffix == ".png"]
        out["out"] = str(Path(ctx.out).expanduser())
    return out


def sweep(run: SweepRun, ctx: RunContext | None = None) -> SweepReport:
    """The Appendix-B grid: each (family, scale, init) trained by full-batch GD, one JSON per run, resumable."""
    from gen_common.device import num_threads
    from icl_dynamics.sweep import paper_grid, run_sweep

    ctx = RunContext.of(ctx)
    if ctx.out is None:
        raise ValueError("sweep writes its runs: give an output folder (--out DIR)")
    out = Path(ctx.out).expanduser()
    specs = paper_grid(
        families=run.families,
        lr_mode=run.lr_mode,
        d=run.d,
        T=run.T,
        m=run.m,
        m_test=run.m_test,
        epochs=run.epochs,
        dtype=run.dtype,
        seed=ctx.seed + 1,
        masked=run.masked,
        scales=run.scales,
        balanced=run.balanced,
    )
    if not run.resume:
        # redo: this sweep's own run files are replaced (refused without --overwrite); nothing else is touched
        for spec in specs:
            if (out / "runs" / f"{spec.run_id}.json").exists():
                ctx.output(f"runs/{spec.run_id}.json").unlink()
    skipped: list[bool] = []
    device = _device(ctx)
    with num_threads(_threads(run.threads, run.m, run.T, run.d, device)):
        rows = run_sweep(
            specs, out, device=device, progress=ctx.progress, on_run=lambda r, s: skipped.append(s)
        )
    return SweepReport(out, len(rows), int(sum(skipped)), rows)


def plot(run: PlotRun, ctx: RunContext | None = None) -> PlotReport:
    """Every figure the sweep's run records support (see `icl_dynamics.plotting`)."""
    from icl_dynamics.plotting import plot_records
    from icl_dynamics.sweep import load_runs

    ctx = RunContext.of(ctx)
    records = load_runs(run.runs)
    if ctx.out is None:
        ctx = dataclasses.replace(ctx, out=Path(run.runs).expanduser() / "figures")
    paths = ctx.publish(lambda folder: plot_records(records, folder))
    return PlotReport(paths, len(records))


def bench(run: BenchRun, ctx: RunContext | None = None) -> dict[str, Any]:
    """Per-epoch time of the O(T) cumulative-sum GD against the direct O(T²) analytic and autograd baselines."""
    from icl_dynamics.bench import run_benchmark

    ctx = RunContext.of(ctx)
    return run_benchmark(
        d=run.d,
        T=run.T,
        m=run.m,
        epochs=run.epochs,
        baseline_epochs=run.baseline_epochs,
        dtype=run.dtype,
        device=_device(ctx),
        threads=run.threads,
        seed=ctx.seed,
    )


def human_kv(title: str, result: dict[str, Any], keys: Sequence[str]) -> str:
    """A two-column table of the chosen keys (the CLI's human-readable output)."""
    from gen_common.cli import format_table

    rows = [[k, result[k]] for k in keys if k in result and result[k] is not None]
    return title + "\n" + format_table(["quantity", "value"], rows, floatfmt=".6g")
