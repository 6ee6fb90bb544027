"""The ``longalign`` console script: a table of commands (gen_common.cli); each runs a function of `longalign.runs`."""

from __future__ import annotations

from typing import Any

from gen_common.cli import Command, format_table, main_for
from longalign.runs import (
    BenchRun,
    ConvertRun,
    EncodeRun,
    EvaluateRun,
    SampleRun,
    ScoreRun,
    TrainAlignRun,
    TrainRewardRun,
)

DESCRIPTION = (
    "LongAlign (Liu et al., ICLR 2025): segment-level encoding of long prompts for Stable Diffusion, decomposed "
    "CLIP preference scores (text-relevant vs text-irrelevant), and reweighted reward fine-tuning with LoRA. "
    "Every command runs offline on tiny models with --model tiny / --preference tiny."
)


def _show_encode(r: dict[str, Any]) -> str:
    rows = [
        [i, s, t, d, n, c]
        for i, (s, t, d, n, c) in enumerate(
            zip(r["segments"], r["prompt_tokens"], r["plain_clip_tokens_dropped"], r["rows"], r["rows_cut"])
        )
    ]
    head = format_table(["prompt", "segments", "tokens", "plain CLIP drops", "rows kept", "rows cut"], rows)
    return head + "".join(f"\nwarning: {w}" for w in r["warnings"])


def _show_score(r: dict[str, Any]) -> str:
    rows = [[x["image"], x["score"], x["relevant"], x["irrelevant"]] for x in r["per_image"]]
    return format_table(["image", f"score (w={r['weight']})", "relevant", "irrelevant"], rows)


def _show_evaluate(r: dict[str, Any]) -> str:
    rows = [
        [k, v["mean_score"], v["mean_plain"], v["mean_relevant"], v["mean_irrelevant"]]
        for k, v in r["alignment"].items()
    ]
    head = format_table(["preference", f"score (w={r['weight']})", "plain", "relevant", "irrelevant"], rows)
    return head + (f"\nFID: {r['fid']:.4f}" if "fid" in r else "")


def _show_bench(r: dict[str, Any]) -> str:
    e = r["encoding"]
    lines = [
        f"device: {r['device']}",
        f"encoding a {e['sentences']}-sentence prompt ({e['encoder_params'] / 1e6:.1f}M-parameter text encoder, "
        f"{e['threads']} thread(s)): per-segment {e['per_segment_s'] * 1e3:.2f} ms, "
        f"batched {e['batched_s'] * 1e3:.2f} ms, speedup x{e['speedup']:.2f}",
    ]
    if "reward_step" in r:
        s = r["reward_step"]
        key = s["memory_measure"]
        lines.append(
            f"reward step: plain {s['plain']['seconds']:.2f} s / {s['plain'][key] / 2**20:.1f} MiB, checkpointed "
            f"{s['checkpointed']['seconds']:.2f} s / {s['checkpointed'][key] / 2**20:.1f} MiB ({key}); "
            f"memory ratio {s['memory_ratio']:.3f}, time ratio {s['time_ratio']:.2f}"
        )
    return "\n".join(lines)


COMMANDS = [
    Command("encode", "longalign.runs:encode", EncodeRun, writes=("embeds.safetensors",), human=_show_encode),
    Command(
        "sample",
        "longalign.runs:sample",
        SampleRun,
        writes=("images/sample-*.png", "contact_sheet.png"),
        out_default="runs/longalign-samples",
    ),
    Command(
        "evaluate",
        "longalign.runs:evaluate",
        EvaluateRun,
        writes=("images/sample-*.png", "contact_sheet.png", "fid_stats.npz", "evaluation.json"),
        out_default="runs/longalign-eval",
        human=_show_evaluate,
    ),
    Command("score", "longalign.runs:score", ScoreRun, writes=("scores.json",), human=_show_score),
    Command(
        "train-align",
        "longalign.runs:train_align_run",
        TrainAlignRun,
        writes=("lora/*", "adapter/*"),
        out_default="runs/longalign-align",
        resumable=True,
    ),
    Command(
        "train-reward",
        "longalign.runs:train_reward_run",
        TrainRewardRun,
        writes=("lora/*", "reward_curve.png"),
        out_default="runs/longalign-reward",
        resumable=True,
    ),
    Command("convert", "longalign.runs:convert", ConvertRun, writes=("lora/*",)),
    Command("bench", "longalign.runs:bench", BenchRun, human=_show_bench),
]

main = main_for("longalign", COMMANDS, description=DESCRIPTION, version="0.1.0")

if __name__ == "__main__":
    raise SystemExit(main())
