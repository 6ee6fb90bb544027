"""The ``iced-coke`` console script: a table of commands. Flags come from the configs in `iced_coke.runs`; what a
command does is the library function of the same name there."""

from __future__ import annotations

from typing import Any

from gen_common.cli import Command, main_for
from iced_coke.runs import BenchRun, EvaluateRun, MineRun, SampleRun, SearchRun

DESCRIPTION = (
    "Latent Concept Misalignment (Zhao et al., ECCV 2024): MoCE sampling (the easily lost concept first, then the "
    "full prompt), the switch-step search, LLM mining of concept pairs, evaluation and a benchmark. "
    "--model tiny-sd / tiny-sdxl run offline on toy pipelines."
)


def _show_search(rep: Any) -> str:
    lines = [
        f"{r['prompt']}: k*={r['switch_step']} ({'accepted' if r['accepted'] else 'fallback'}) "
        f"S1={r['scores'][0]:.4f} S2={r['scores'][1]:.4f} probes={r['probes']} unet={r['unet_calls']}"
        for r in rep.results
    ]
    return "\n".join([*lines, f"UNet calls: {rep.unet_calls}, {rep.seconds:.1f} s, log: {rep.results_file}"])


def _show_bench(rep: Any) -> str:
    from gen_common.cli import format_table

    table = format_table(
        ["setting", "probes", "UNet calls", "seconds"],
        [
            [r["setting"], " ".join(map(str, r["probes"])), r["unet_calls"], f"{r['seconds']:.2f}"]
            for r in rep.rows
        ],
    )
    ratios = "\n".join(f"{k}: {v:.3f}" for k, v in rep.ratios.items())
    return f"{table}\n{ratios}\nexpected (formula): {rep.formula}\ndevice: {rep.device}"


def _show_eval(rep: Any) -> str:
    lines = [
        f"{m}: success {rate:.3f}, mean S1/S2 {rep.mean_scores[m][0]:.4f}/{rep.mean_scores[m][1]:.4f}"
        for m, rate in rep.success_rate.items()
    ]
    return "\n".join(lines)


# search and mine resume from their JSONL logs in --out: a finished pair's sheet and the mined_pairs.json rebuilt
# from the log are part of that state, so they are not refused on a rerun (a new pair's sheet still never
# replaces a file it did not write).
COMMANDS = [
    Command(
        "sample", "iced_coke.runs:sample", SampleRun, writes=("*_k*_*.png",), out_default="iced-coke-samples"
    ),
    Command(
        "search",
        "iced_coke.runs:search",
        SearchRun,
        writes=(),
        out_default="iced-coke-search",
        resumable=True,
        human=_show_search,
    ),
    Command(
        "mine",
        "iced_coke.runs:mine",
        MineRun,
        writes=(),
        out_default="iced-coke-mine",
        resumable=True,
    ),
    Command(
        "evaluate",
        "iced_coke.runs:evaluate",
        EvaluateRun,
        writes=("evaluation.json", "*.png"),
        out_default="iced-coke-eval",
        human=_show_eval,
    ),
    Command("bench", "iced_coke.runs:bench", BenchRun, writes=("bench.json",), human=_show_bench),
]

main = main_for("iced-coke", COMMANDS, description=DESCRIPTION)
