"""Console script ``icl-dynamics``: a table of commands; what each does lives in `icl_dynamics.runs`.

Every subcommand takes ``--device``, ``--seed``, ``--json``, ``--out`` and ``--overwrite`` (gen_common.cli); torch is
imported only when a command runs.
"""

from __future__ import annotations

from typing import Any

from gen_common.cli import Command, format_table, main_for
from icl_dynamics.runs import (
    FIGURES,
    TRAIN_WRITES,
    BenchRun,
    PlotRun,
    SweepRun,
    TheoryRun,
    TrainRun,
    human_kv,
)

DESCRIPTION = """\
Mesa-optimization in autoregressively trained one-layer linear transformers (Zheng et al., NeurIPS 2024).
Simulate full-batch gradient descent of a linear causal self-attention model on AR sequences x_{t+1} = W x_t
(W unitary diagonal) and compare the trained parameters with the closed-form fixed point
ab* = (T-2)m4 / [(T-2)m6 + (d-1)m24 H_{T-2}].

examples:
  icl-dynamics theory --x1 gaussian --sigma 1 --d 5 --T 100 --json
  icl-dynamics train --x1 gaussian --sigma 1 --d 3 --T 20 --m 1000 --json
  icl-dynamics sweep --out runs/sweep --m 2000 --T 50     (the Appendix-B grid, resumable)
  icl-dynamics plot --runs runs/sweep --out runs/figures
  icl-dynamics bench --epochs 200                          (the paper's setting vs the O(T^2) baseline)
"""

THEORY_KEYS = (
    "predicted_ab",
    "predicted_ab_limit",
    "predicted_ratio",
    "predicted_ratio_limit",
    "predicted_mse_last",
    "predicted_loss",
    "recovery_gap",
    "recovers",
    "assumption_holds",
)
TRAIN_KEYS = (
    "ab",
    "predicted_ab",
    "rel_error_ab",
    "final_loss",
    "max_offdiag",
    "ratio_last",
    "predicted_ratio",
    "mse_last",
    "predicted_mse_last",
    "lr",
    "epochs",
    "converged",
    "seconds",
    "out",
)


def _human_theory(r: dict[str, Any]) -> str:
    title = f"theory for {r['x1']}, d={r['d']}, T={r['T']} (moments: {r['moments_source']})"
    return human_kv(title, r, THEORY_KEYS)


def _human_train(r: dict[str, Any]) -> str:
    return human_kv(f"full-batch GD on {r['x1']}, d={r['d']}, T={r['T']}, m={r['m']}", r, TRAIN_KEYS)


def _human_sweep(r: Any) -> str:
    cols = ["run", "ab", "predicted", "rel.err", "loss", "ratio", "mse_last", "offdiag"]
    keys = [
        "run_id",
        "ab",
        "predicted_ab",
        "rel_error_ab",
        "final_loss",
        "ratio_last",
        "mse_last",
        "max_offdiag",
    ]
    table = format_table(cols, [[w[k] for k in keys] for w in r.rows])
    return f"{table}\n{r.runs} runs ({r.resumed} resumed) in {r.out}"


COMMANDS = [
    Command("theory", "icl_dynamics.runs:theory", TheoryRun, human=_human_theory),
    Command("train", "icl_dynamics.runs:train", TrainRun, writes=TRAIN_WRITES, human=_human_train),
    Command(
        "sweep",
        "icl_dynamics.runs:sweep",
        SweepRun,
        out_default="runs/icl-sweep",
        resumable=True,
        human=_human_sweep,
    ),
    Command("plot", "icl_dynamics.runs:plot", PlotRun, writes=FIGURES),
    Command("bench", "icl_dynamics.runs:bench", BenchRun, human=lambda r: r["report"]),
]

main = main_for("icl-dynamics", COMMANDS, description=DESCRIPTION)


if __name__ == "__main__":
    raise SystemExit(main())
