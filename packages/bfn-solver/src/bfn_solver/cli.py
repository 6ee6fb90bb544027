"""Console script ``bfn-solver``: a table of commands; what each does lives in `bfn_solver.runs`."""

from __future__ import annotations

from typing import Any

from bfn_solver.runs import MODEL_FILES, BenchRun, OrderCheckRun, SampleRun, TrainRun
from gen_common.cli import Command, format_table, main_for

DESCRIPTION = """Bayesian flow networks as SDEs, and the fast BFN solvers (Xue et al., ICML 2024).

Model convention: BFN time t in [0, 1] (t = 1 at the data), passed as a tensor of shape (batch,).
"""


def show_order_check(report: Any) -> str:
    rows = [
        [r.key, r.expected, "n/a" if r.order is None else f"{r.order:.2f}", r.error_kind,
         " ".join(f"{e:.1e}" for e in r.errors)]
        for r in report.results
    ]  # fmt: skip
    table = format_table(["method", "expected", "measured", "error", "errors (by steps)"], rows)
    return table + "".join(f"\nwrote {f}" for f in report.files)


def show_bench(report: Any) -> str:
    parts = []
    for c in report.curves:
        cols, rows = c.table()
        floor = f", Monte Carlo floor = {c.floor:.4g}" if c.floor > 0 else " (exact, no Monte Carlo)"
        head = f"{c.data}: {c.metric}; bfn @ {c.reference_steps} steps = {c.reference_quality:.4g}{floor}"
        parts.append(head + "\n" + format_table(cols, rows))
    return "\n\n".join(parts) + "".join(f"\nwrote {f}" for f in report.files)


COMMANDS = [
    Command(
        "sample",
        "bfn_solver.runs:sample",
        SampleRun,
        writes=("samples.safetensors", "samples.png", "samples.txt"),
    ),
    Command(
        "order-check",
        "bfn_solver.runs:order_check",
        OrderCheckRun,
        writes=("order_check.json", "order_check.png"),
        human=show_order_check,
    ),
    Command(
        "bench",
        "bfn_solver.runs:bench",
        BenchRun,
        writes=("bench.json", "bench.png"),
        human=show_bench,
    ),
    Command(
        "train",
        "bfn_solver.runs:train",
        TrainRun,
        writes=tuple(f"model/{name}" for name in MODEL_FILES),
        resumable=True,
    ),
]

main = main_for("bfn-solver", COMMANDS, description=DESCRIPTION)


if __name__ == "__main__":
    raise SystemExit(main())
