"""``posecrafter`` console script: a table of commands (flags come from each command's config in `runs`)."""

from __future__ import annotations

from typing import Any

from gen_common.cli import Command, format_table, main_for
from posecrafter import runs

DESCRIPTION = """PoseCrafter: one-shot personalized video following flexible poses (Zhong et al., ECCV 2024).

  posecrafter train --video clip.mp4 --poses poses/ --model SD15 --controlnet CN_OPENPOSE --out runs/me
  posecrafter generate --weights runs/me/weights --video clip.mp4 --poses poses/ --targets dance/ ... --out runs/me
  posecrafter edit-preview --video synthetic --targets synthetic --out runs/preview
  posecrafter train --steps 20 --out runs/tiny      # offline: tiny model, synthetic blob person
Poses are OpenPose / DWPose JSON (18 body, 68 face, 21 per hand keypoints)."""


def _bench(report: Any) -> str:
    cols = ["variant", "s_per_frame", "s_per_step", "peak_mib"]
    rows = [[r.get(c, "") for c in cols] for r in report.rows]
    ratios = "\n".join(f"{k}: {v:.3f}" for k, v in report.ratios.items())
    return f"device: {report.device}\n{format_table(cols, rows)}\n{ratios}"


COMMANDS = [
    Command(
        "train", "posecrafter.runs:train", runs.TrainRun,
        writes=("weights/*", "train_log.json", "train_strip.png"), out_default="runs/posecrafter", resumable=True,
    ),
    Command("generate", "posecrafter.runs:generate", runs.GenerateRun, writes=("video.gif", "video.mp4", "strip.png")),
    Command("edit-preview", "posecrafter.runs:edit_preview", runs.EditPreviewRun, writes=("edit_preview.png",)),
    Command("evaluate", "posecrafter.runs:evaluate", runs.EvaluateRun),
    Command("bench", "posecrafter.runs:bench", runs.BenchRun, human=_bench),
]  # fmt: skip

main = main_for("posecrafter", COMMANDS, description=DESCRIPTION, version="0.1.0")
