"""Console script ``mdm-scaling``: a table of commands; what each does lives in `mdm_scaling.runs`.

Every subcommand takes ``--device``, ``--seed``, ``--json``, ``--out`` and ``--overwrite`` (gen_common.cli); torch is
imported only when a command runs.
"""

from __future__ import annotations

from typing import Any

from gen_common.cli import Command, format_table, main_for
from mdm_scaling.runs import (
    TRAIN_WRITES,
    BenchRun,
    ConvertRun,
    EvalRun,
    FitRun,
    GenerateRun,
    PresetsRun,
    ReverseRun,
    ShiftRun,
    SpeedRun,
    SweepRun,
    TrainRun,
)

DESCRIPTION = """\
Train matched MDM/ARM language models, run IsoFLOP sweeps and fit the scaling laws, evaluate zero-shot tasks with
unsupervised CFG, compare generation speed, and run the reverse-curse and distribution-shift studies. Every
subcommand runs offline at tiny size by default (the bundled corpus).

examples:
  mdm-scaling presets
  mdm-scaling train --arch mdm --preset tiny-19k --steps 300 --out runs/mdm
  mdm-scaling sweep --out runs/sweep             # tiny IsoFLOP grid on the bundled corpus -> runs/sweep/runs.csv
  mdm-scaling fit runs/sweep/runs.csv --json     # {"mdm": {"A":..,"alpha":..,"beta":..}, "arm": {...}, ...}
  mdm-scaling eval --model runs/mdm/model task.jsonl --method chain_rule --cfg 1.0
  mdm-scaling generate --model runs/mdm/model --prompt "The " --steps 32
  mdm-scaling speed                              # MDM steps vs ARM+KV cache: time and quality
  mdm-scaling reverse                            # reverse curse on synthetic facts
  mdm-scaling convert smdm.safetensors --preset 170M --out runs/smdm-170m
"""


def _table(rows: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(c for r in rows for c in r))  # rows may differ (the ARM has no infilling score)
    return format_table(cols, [[r.get(c, "") for c in cols] for r in rows])


def _human_rows(r: Any) -> str:
    return _table(r.rows) + "".join(f"\n{k}: {v}" for k, v in r.extra.items())


def _human_speed(r: Any) -> str:
    m = r.matched
    if m["speedup"] is None:
        verdict = (
            f"no MDM setting reaches the ARM's quality ({m['arm_gen_nll']:.3f} ± {m['arm_gen_nll_se']:.3f} "
            f"nats/token); closest: {m['best_mdm_steps']} steps at {m['best_mdm_gen_nll']:.3f} (+{m['gap']:.3f})"
        )
    else:
        verdict = (
            f"matched quality at {m['matched_steps']} MDM steps: {m['speedup']:.2f}x the ARM+KV-cache speed"
        )
    c = m["crossing"]
    if c["status"] == "crossed":
        cross = (
            f"quality curves cross at {c['steps']:.1f} ± {c['steps_se']:.1f} MDM steps: "
            f"{c['speedup']:.2f} ± {c['speedup_se']:.2f}x the ARM+KV-cache speed (interpolated in log steps)"
        )
    elif c["status"] == "below_sweep":
        cross = f"the fewest MDM steps swept ({c['steps']}) already match the ARM: crossing below the sweep"
    else:
        cross = f"no crossing in the sweep: the closest MDM setting trails by {c['gap_in_se']:.1f} standard errors"
    return f"{_table(r.rows)}\n{verdict}\n{cross}\nquality scored by {r.reference}"


def _human_fit(res: dict[str, Any]) -> str:
    lines = []
    for a, f in res.items():
        if isinstance(f, dict) and "alpha" in f:
            lines.append(
                f"{a}: L*(C) = {f['A']:.4g}·C^-{f['alpha']:.4g}   N*(C) = {f['k']:.3g}·C^{f['beta']:.4g}"
                f"   ({f['bracketed']} of {f['budgets']} IsoFLOP minima bracketed)"
            )
            if f["bracketed"] < f["budgets"]:
                lines.append(
                    f"  warning: {a} has IsoFLOP curves whose minimum lies outside the sizes run; "
                    "N*(C) and beta there are only the best run: widen the size grid"
                )
    gap = res.get("compute_gap") or {}
    for a, g in gap.items():
        if isinstance(g, dict):
            lines.append(f"compute gap {a}/{gap['reference']} at C={gap['at_budget']:.3g}: {g['gap']:.3g}x")
    lines.append("figures: " + ", ".join(res["figures"]))
    return "\n".join(lines)


COMMANDS = [
    Command(
        "presets", "mdm_scaling.runs:presets", PresetsRun, human=lambda r: format_table(r.columns, r.rows)
    ),
    Command(
        "train",
        "mdm_scaling.runs:train",
        TrainRun,
        writes=TRAIN_WRITES,
        out_default="runs/train",
        resumable=True,
    ),
    Command("sweep", "mdm_scaling.runs:sweep", SweepRun, out_default="runs/sweep", resumable=True),
    Command("fit", "mdm_scaling.runs:fit", FitRun, writes=("isoflop.png", "frontier.png"), human=_human_fit),
    Command("eval", "mdm_scaling.runs:evaluate", EvalRun, human=lambda r: _table(list(r.tasks.values()))),
    Command(
        "generate",
        "mdm_scaling.runs:generate",
        GenerateRun,
        human=lambda r: "\n---\n".join(r.samples) + f"\n(nfe {r.nfe:.1f})",
    ),
    Command("speed", "mdm_scaling.runs:speed", SpeedRun, human=_human_speed),
    Command("reverse", "mdm_scaling.runs:reverse", ReverseRun, human=_human_rows),
    Command("shift", "mdm_scaling.runs:shift", ShiftRun, human=_human_rows),
    Command(
        "convert",
        "mdm_scaling.runs:convert",
        ConvertRun,
        writes=("config.json", "model.safetensors"),
        out_default="runs/converted",
    ),
    Command("bench", "mdm_scaling.runs:bench", BenchRun, human=_human_rows),
]

main = main_for("mdm-scaling", COMMANDS, description=DESCRIPTION)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
