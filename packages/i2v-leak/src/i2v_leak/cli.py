"""Console script ``i2v-leak``: a table of commands; what each does lives in `i2v_leak.runs`."""

from __future__ import annotations

from gen_common.cli import Command, format_table, main_for
from i2v_leak import runs

PROG = "i2v-leak"

DESCRIPTION = """\
Fix conditional image leakage in image-to-video diffusion (Zhao et al., NeurIPS 2024) on stock diffusers
pipelines: start generation earlier (M < T) from the KL-optimal Analytic-Init Gaussian, estimated from your own
videos, and fine-tune with time-dependent noise on the condition (TimeNoise).

  i2v-leak stats    --model tiny --videos synthetic --out runs/stats
  i2v-leak generate --pipeline svd --model tiny --image synthetic --stats runs/stats/latent_stats.safetensors
  i2v-leak compare  --pipeline svd --model tiny --image synthetic --out runs/compare
  i2v-leak train    --model tiny --videos synthetic --steps 2 --out runs/train
  i2v-leak presets

Real models: --model PATH (a diffusers folder) or a hub id such as stabilityai/stable-video-diffusion-img2vid
(needs the network; offline, download it elsewhere and pass the folder).
"""


def show_presets(report: runs.PresetsReport) -> str:
    cols = ["preset", "M", "steps", "eta", "cfg", "beta_m", "a", "mu_max", "lr", "size"]
    rows = [
        [k, p["M"], p["steps"], p["eta"], p["guidance"], p["beta_m"], p["a"], p["mu_max"], p["lr"],
         f"{p['num_frames']}x{p['height']}x{p['width']}"]
        for k, p in report.presets.items()
    ]  # fmt: skip
    notes = "\n".join(f"  {k}: {p['notes']}" for k, p in report.presets.items())
    return format_table(cols, rows) + "\nnotes:\n" + notes


COMMANDS = [
    Command(
        "stats",
        "i2v_leak.runs:stats",
        runs.StatsRun,
        writes=(runs.STATS_FILE,),
        out_default="runs/i2v-leak/stats",
    ),
    Command(
        "generate",
        "i2v_leak.runs:generate",
        runs.GenerateRun,
        writes=("video.gif", "frames.png"),
        out_default="runs/i2v-leak/generate",
    ),
    Command(
        "compare",
        "i2v_leak.runs:compare",
        runs.CompareRun,
        writes=("compare.gif", "compare.png"),
        out_default="runs/i2v-leak/compare",
    ),
    Command(
        "train",
        "i2v_leak.runs:train",
        runs.TrainRun,
        writes=runs.UNET_FILES,
        out_default="runs/i2v-leak/train",
        resumable=True,
    ),
    Command("presets", "i2v_leak.runs:presets", runs.PresetsRun, human=show_presets),
    Command("bench", "i2v_leak.runs:bench", runs.BenchRun),
]

main = main_for(PROG, COMMANDS, description=DESCRIPTION)


if __name__ == "__main__":  # `python -m i2v_leak.cli` / `accelerate launch -m i2v_leak.cli train`
    raise SystemExit(main())
