"""Console script ``radd``: a table of commands; what each does lives in `radd.runs`.

Every subcommand takes ``--device``, ``--seed``, ``--json`` (one JSON object on stdout), ``--out`` and
``--overwrite`` (gen_common.cli); torch is imported only when a command runs.
"""

from __future__ import annotations

from typing import Any

from gen_common.cli import Command, format_table, main_for
from radd.runs import TRAIN_WRITES, BenchRun, ConvertRun, EvalRun, GenPPLRun, SampleRun, TrainRun

DESCRIPTION = """\
Reparameterized absorbing discrete diffusion (RADD): a time-independent masked language model, its four
DCE/DSE losses, likelihood bounds, and diffusion samplers with the cache that skips unchanged sequences.

  radd train  --out runs/tiny            train a small character model on the bundled corpus (offline)
  radd sample --model runs/tiny          sample text (cached analytic sampler; --ordered for any-order AR)
  radd eval   --model runs/tiny          NLL bound / perplexity with the k-, λ- or t-DCE estimator
  radd eval   --model M --benchmark ptb --data ptb.test.jsonl   zero-shot PPL, official protocol
  radd gen-ppl --samples S --scorer gpt2-large                   generative PPL + unigram entropy
  radd convert SRC DST                   official checkpoint (JingyangOu/radd-*) -> this package's folder
  radd bench                             cached vs uncached sampling: NFE vs formula, wall-clock ratio
"""


def _human_train(r: Any) -> str:
    return (
        f"saved {r.model} ({r.params} parameters, {r.steps} steps, {r.train_seconds:.1f} s)\n"
        f"validation NLL bound {r.val_nll_bound_nats_per_token:.4f} nats/token "
        f"(unigram baseline on the same windows {r.val_unigram_baseline_nats:.4f})"
    )


def _human_samples(r: Any) -> str:
    body = "\n\n".join(f"--- sample {i}\n{t}" for i, t in enumerate(r.samples))
    exp = f" (expected {r.expected_nfe:.1f})" if r.expected_nfe is not None else ""
    saved = f"\nwritten to {r.file}" if r.file else ""
    return f"{body}\n\nsteps {r.steps}, NFE/sequence {r.nfe:.1f}{exp}, {r.seconds:.2f} s{saved}"


def _human_bench(r: Any) -> str:
    cols = [
        "steps",
        "E[NFE]",
        "NFE",
        "err %",
        "NFE ratio",
        "uncached s",
        "cached s",
        "speed-up",
        "eff.",
        "same",
    ]
    rows = [
        [
            x["steps"],
            x["expected_nfe"],
            x["measured_nfe"],
            100 * x["nfe_error"],
            x["nfe_ratio"],
            x["uncached_s"],
            x["cached_s"],
            x["speedup"],
            x["efficiency"],
            "yes" if x["identical"] else "NO",
        ]
        for x in r.rows
    ]
    head = f"model: {r.model}  device: {r.device['device']}  batch: {r.num_samples}  length: {r.rows[0]['length']}"
    return (
        f"{head}\n{format_table(cols, rows)}\n(eff. = speed-up / NFE ratio; goal >= 0.9; NFE goal within 3%)"
    )


COMMANDS = [
    Command(
        "train",
        "radd.runs:train",
        TrainRun,
        writes=TRAIN_WRITES,
        out_default="runs/radd-tiny",
        resumable=True,
        human=_human_train,
    ),
    Command("sample", "radd.runs:sample", SampleRun, writes=("samples.txt",), human=_human_samples),
    Command("eval", "radd.runs:evaluate", EvalRun, writes=("eval.json",)),
    Command("gen-ppl", "radd.runs:gen_ppl", GenPPLRun, writes=("gen_ppl.json",)),
    Command("convert", "radd.runs:convert", ConvertRun, writes=("config.json", "model.safetensors")),
    Command("bench", "radd.runs:bench", BenchRun, writes=("bench.json",), human=_human_bench),
]

main = main_for("radd", COMMANDS, description=DESCRIPTION)


if __name__ == "__main__":
    raise SystemExit(main())
