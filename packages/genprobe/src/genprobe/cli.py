"""Console script ``genprobe``: a table of commands; what each does lives in `genprobe.runs`."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

from gen_common.cli import Command, format_table, main_for
from genprobe import runs
from genprobe.config import SmallSplitWarning
from genprobe.runs import report_files

DESCRIPTION = """\
Distribution classification (arXiv 2405.18029): train classifiers whose classes are image sources (real photos,
generator A, generator B, ...) and probe what they rely on: low or high frequencies, edges.

Sources are given as --source NAME=PATH (repeat the flag), PATH a folder of png/jpg/webp images (recursive) or a
.safetensors / .pt / .npy file with an (N, C, H, W) tensor. Frequency cutoffs R are radii in cycles per image (DFT
index units): lowpass:R keeps r <= R, highpass:R keeps r > R.

examples:
  genprobe train --source real=photos/ --source fake=samples/ --filter highpass:16 --json
  genprobe sweep --source real=photos/ --source fake=samples/ --cutoffs 4,8,16,32 --out runs/sweep
  genprobe pairwise --source real=a/ --source dit=b/ --source uvit=c/
  genprobe mixing --source real=photos/ --source gen=samples/ --real 1000 --generated 250,500
  genprobe toy --json            # the offline proof: chance after low-pass, ~1 after high-pass, and the reverse
"""


def _wrote(files: Sequence[str]) -> str:
    return f"\nwrote {', '.join(files)}" if files else ""


def show_train(r: runs.TrainReport) -> str:
    lo, hi = r.accuracy_ci95 or (float("nan"), float("nan"))
    lines = [
        f"accuracy {r.accuracy:.4f} (95% CI {lo:.3f}-{hi:.3f}; balanced {r.balanced_accuracy:.4f}) on {r.n} test "
        "images"
    ]
    if r.average_precision is not None:
        lines.append(f"average precision {r.average_precision:.4f}")
    lines.append(format_table(["source", "accuracy"], list(r.per_class_accuracy.items())))
    lines.append(f"steps {r.steps} (best {r.best_step}), {r.train_seconds:.1f} s")
    if r.out:
        lines.append(f"classifier saved to {r.out}/classifier")
    return "\n".join(lines)


def show_report(r: runs.ExperimentReport) -> str:
    rows = r.rows if r.report != "spectrum" else r.rows[:: max(1, len(r.rows) // 12)]
    return f"{r.title}\n{format_table(r.columns, rows)}{_wrote(r.files)}"


def show_toy(r: runs.ToyReport) -> str:
    if r.exported is not None:
        return "\n".join(f"{name}: {folder}" for name, folder in r.exported.items())
    return format_table(["pair", "filter", "accuracy", "expected"], [row[:4] for row in r.rows]) + _wrote(
        r.files
    )


def show_bench(r: runs.BenchReport) -> str:
    return (
        f"training throughput: cached {r.cached_images_per_s:.0f} img/s, uncached {r.uncached_images_per_s:.0f} "
        f"img/s (x{r.throughput_ratio:.2f})\ntime to {r.target_accuracy:.0%} val accuracy: cached "
        f"{r.cached_seconds_to_target:.1f} s, uncached {r.uncached_seconds_to_target:.1f} s "
        f"(x{r.time_to_target_ratio:.2f})\ndevice {r.device}"
    )


def _report(name: str, function: str, config: type, files: str | None = None) -> Command:
    return Command(
        name,
        f"genprobe.runs:{function}",
        config,
        writes=report_files(files or name),
        out_default=f"runs/genprobe-{name}",
        human=show_report,
    )


COMMANDS = [
    Command(
        "train",
        "genprobe.runs:train",
        runs.TrainRun,
        writes=runs.TRAIN_FILES,
        resumable=True,
        human=show_train,
    ),
    _report("sweep", "sweep", runs.SweepRun, "frequency_sweep"),
    _report("pairwise", "pairwise", runs.PairwiseRun),
    _report("multiclass", "multiclass", runs.MulticlassRun),
    _report("edges", "edges", runs.EdgesRun),
    _report("scaling", "scaling", runs.ScalingRun, "data_scaling"),
    _report("robustness", "robustness", runs.RobustnessRun),
    _report("mixing", "mixing", runs.MixingRun, "data_mixing"),
    _report("spectrum", "spectrum", runs.SpectrumRun),
    Command(
        "toy",
        "genprobe.runs:toy",
        runs.ToyRun,
        writes=report_files("toy"),
        out_default="runs/genprobe-toy",
        human=show_toy,
    ),
    Command("predict", "genprobe.runs:predict", runs.PredictRun, writes=report_files("predictions")),
    Command("bench", "genprobe.runs:bench", runs.BenchRun, writes=("bench.json",), human=show_bench),
]

_main = main_for("genprobe", COMMANDS, description=DESCRIPTION)


def main(argv: Sequence[str] | None = None) -> int:
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            # A too-small split is the user's to fix: one line, like an error, not a source location.
            if issubclass(category, SmallSplitWarning):
                sys.stderr.write(f"genprobe: warning: {message}\n")
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        warnings.simplefilter("always", SmallSplitWarning)
        return _main(argv)


if __name__ == "__main__":  # `python -m genprobe.cli` / `accelerate launch -m genprobe.cli`
    raise SystemExit(main())
