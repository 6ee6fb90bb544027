"""The tour's demo: Gaussian, sparse and all-ones x₁, three initialisations each, trained ab vs the closed form.

``small`` (CPU, well under a minute): d = 3, T = 20, m = 2000 variance-reduced training sequences, the stable
learning rate, training until ab settles. ``large`` (GPU): the paper's Appendix-B grid at d = 5, T = 100,
m = 10 000 with the paper's learning rates and epochs.
"""

from __future__ import annotations

from typing import Any

from gen_common.cli import RunContext
from gen_common.demo import DemoContext, DemoResult, Table
from icl_dynamics.runs import PlotRun, SweepRun, plot, sweep
from icl_dynamics.sweep import load_runs

# The presets are the sweep command's own configs: `icl-dynamics sweep` with these values is the demo.
# small: the paper's three families at scale 1 and its three initialisations, d = 3, T = 20, variance-reduced data,
# the stable rate until ab settles (one CPU thread: the products are tiny; measured 42 s wall on one thread vs
# 7 min on two at load ~6 on 2 cores). large: the paper's Appendix-B grid with its rates and epochs.
SMALL = SweepRun(
    scales=(1.0,), lr_mode="auto", d=3, T=20, m=2000, m_test=2000, epochs=600, balanced=True, resume=False
)
LARGE = SweepRun(resume=False)


def run_demo(ctx: DemoContext) -> DemoResult:
    preset = SMALL if ctx.scale == "small" else LARGE
    run_ctx = RunContext(
        device=str(ctx.device),
        seed=ctx.seed,
        out=ctx.out_dir / "sweep",
        overwrite=True,
        progress=ctx.progress,
    )
    order = [row["run_id"] for row in sweep(preset, run_ctx).rows]  # the grid's order: family, scale, init
    by_id = {r["run_id"]: r for r in load_runs(run_ctx.out)}
    records: list[dict[str, Any]] = [by_id[i] for i in order]
    figures = plot(PlotRun(runs=run_ctx.out), RunContext(out=ctx.out_dir, overwrite=True)).figures
    first = records[0]["spec"]

    rows = []
    metrics: dict[str, Any] = {}
    for r in records:
        s = r["summary"]
        rows.append(
            [
                r["run_id"],
                s["ab"],
                s["predicted_ab"],
                s["rel_error_ab"],
                s["final_loss"],
                s.get("ratio_last"),
                s.get("mse_last"),
                s["max_offdiag"],
                s["epochs"],
            ]
        )
    for fam in ("gaussian", "sparse", "ones"):
        runs = [r for r in records if r["spec"]["family"] == fam]
        if not runs:
            continue
        errs = [abs(r["summary"]["rel_error_ab"]) for r in runs]
        metrics[f"{fam}_max_rel_error_ab"] = max(errs)
        metrics[f"{fam}_max_offdiag"] = max(r["summary"]["max_offdiag"] for r in runs)
        metrics[f"{fam}_predicted_ab"] = runs[0]["summary"]["predicted_ab"]
    sparse = [r for r in records if r["spec"]["family"] == "sparse"]
    if sparse:
        metrics["sparse_max_final_loss"] = max(r["summary"]["final_loss"] for r in sparse)
    summary = (
        f"One-layer linear causal self-attention trained by full-batch GD on AR sequences (d={first['d']}, "
        f"T={first['T']}, m={first['m']}). Gaussian and sparse x₁ satisfy the paper's data condition: the weights stay "
        "diagonal and ab lands on the closed form ab* = (T−2)m₄/[(T−2)m₆ + (d−1)m₂₄H_{T−2}] from every "
        "initialisation (sparse: ab* = 1/c² with loss → 0). All-ones x₁ violates it: off-diagonal weights grow "
        "and ab leaves the formula."
    )
    if ctx.scale == "small":
        summary += " Training data are variance-reduced (Gauss–Hermite x₁ with the Gaussian's moments)."
    return DemoResult(
        title="icl-dynamics: emergence of the mesa-optimizer vs theory",
        summary=summary,
        metrics=metrics,
        tables=[
            Table(
                "trained vs predicted",
                [
                    "run",
                    "ab",
                    "predicted ab*",
                    "rel. error",
                    "final loss",
                    "ratio (last)",
                    "MSE (last)",
                    "max off-diag",
                    "epochs",
                ],
                rows,
            )
        ],
        figures=figures,
        headline={
            "claim": "under the paper's data condition, gradient descent trains a one-layer linear transformer "
            "into one step of GD on least squares (a mesa-optimizer): diagonal weights, ab → the closed-form ab*; "
            "all-ones x₁ violates the condition and the result is not vanilla GD",
            "paper": "ab* = (T−2)m₄ / [(T−2)m₆ + (d−1)m₂m₄H_{T−2}] (Gaussian: → 1/(5σ²)); sparse: ab* = 1/c², "
            "loss → 0; all-ones: off-diagonal weights grow",
            "measured": f"max |ab/ab* − 1|: Gaussian {metrics.get('gaussian_max_rel_error_ab', float('nan')):.1%}, "
            f"sparse {metrics.get('sparse_max_rel_error_ab', float('nan')):.1%}; max off-diagonal: all-ones "
            f"{metrics.get('ones_max_offdiag', float('nan')):.3f} vs Gaussian "
            f"{metrics.get('gaussian_max_offdiag', float('nan')):.3f}",
            "reproduces": metrics.get("gaussian_max_rel_error_ab", 1.0) < 0.05
            and metrics.get("sparse_max_rel_error_ab", 1.0) < 0.05
            and metrics.get("ones_max_offdiag", 0.0)
            > 2 * max(metrics.get("gaussian_max_offdiag", 0.0), metrics.get("sparse_max_offdiag", 0.0)),
            "reason": f"d = {first['d']}, T = {first['T']}: the paper's setting at its own (small) scale",
        },
        captions={
            f.name: "ab over epochs from each initialisation; it should settle on the dashed closed-form ab*."
            if f.name.startswith("ab_")
            else "prediction/true ratio at the last test position against the theory's line."
            if f.name.startswith("ratio_")
            else "MSE at the last test position (log scale): the theory says it goes to 0."
            if f.name.startswith("mse_")
            else "Weights after training on all-ones x₁: the off-diagonal entries are not zero (not vanilla GD)."
            if f.name.startswith("heatmap_")
            else "Trained ab against the closed form over all runs: points on the diagonal agree."
            for f in figures
        },
    )
