"""Console script ``mdm-scaling``: train matched MDM/ARM language models, run IsoFLOP sweeps and fit the scaling
laws, evaluate zero-shot tasks with unsupervised CFG, compare generation speed, and run the reverse-curse and
distribution-shift studies. Every subcommand runs offline at tiny size by default (the bundled corpus)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gen_common.cli import add_common_args, emit, format_table, progress_enabled, run_cli

EPILOG = """examples:
  mdm-scaling presets
  mdm-scaling train --arch mdm --preset tiny-19k --steps 300 --out runs/mdm
  mdm-scaling sweep --out runs/sweep             # tiny IsoFLOP grid on the bundled corpus -> runs/sweep/runs.csv
  mdm-scaling fit runs/sweep/runs.csv --json     # {"mdm": {"A":..,"alpha":..,"beta":..}, "arm": {...}, ...}
  mdm-scaling eval --model runs/mdm task.jsonl --method chain_rule --cfg 1.0
  mdm-scaling generate --model runs/mdm --prompt "The " --steps 32
  mdm-scaling speed                              # MDM steps vs ARM+KV cache: time and quality
  mdm-scaling reverse                            # reverse curse on synthetic facts
  mdm-scaling convert smdm.safetensors --preset 170M --out runs/smdm-170m
"""


def _floats(s: str) -> list[float]:
    try:
        return [float(v) for v in s.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}") from exc


def _ints(s: str) -> list[int]:
    try:
        return [int(v) for v in s.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from exc


def _strs(s: str) -> list[str]:
    return [v.strip() for v in s.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mdm-scaling",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    class _Sub:
        """add_parser with the one-line help repeated as the subcommand's description (shown by `CMD --help`)."""

        @staticmethod
        def add_parser(name: str, *, help: str, description: str | None = None) -> argparse.ArgumentParser:
            return subparsers.add_parser(name, help=help, description=description or help)

    sub = _Sub()

    p = sub.add_parser(
        "presets", help="list the model size presets (paper sizes 6M…2121M and tiny CPU sizes)"
    )
    p.add_argument("--vocab-size", type=int, default=32000)
    add_common_args(p)

    p = sub.add_parser("train", help="train an MDM or an ARM (resumes from OUT/checkpoints)")
    p.add_argument("--arch", choices=["mdm", "arm"], required=True)
    p.add_argument("--preset", default="tiny-19k", help="size preset (see `presets`)")
    _data_args(p)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--length", type=int, default=32, help="training sequence length L")
    p.add_argument("--lr", type=float, default=5e-3, help="peak lr (the paper: 2e-4 at 2048 tokens x 256)")
    p.add_argument(
        "--ssl-prob", type=float, default=0.0, help="stochastic sequence length probability (paper: 0.01)"
    )
    p.add_argument("--init", help="start from this model folder (fine-tuning) instead of fresh weights")
    p.add_argument("--sft", help='JSONL of {"prompt", "response"}: train on responses given prompts')
    p.add_argument(
        "--prompt-dropout", type=float, default=0.0, help="with --sft, MDM: drop the prompt (supervised CFG)"
    )
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="torch.compile the forward pass (GPU)")
    p.add_argument(
        "--eval-samples", type=int, default=32, help="Monte Carlo draws of the MDM validation bound"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing model in OUT/model")
    add_common_args(p, out_default="runs/train")

    p = sub.add_parser("sweep", help="IsoFLOP sweep: budgets x sizes x archs -> OUT/runs.csv (resumable)")
    p.add_argument(
        "--budgets", type=_floats, default=[1e9, 2.5e9, 6e9], help="FLOP budgets C (comma-separated)"
    )
    p.add_argument(
        "--sizes", type=_strs, default=["tiny-1k", "tiny-2k", "tiny-4k", "tiny-8k", "tiny-19k", "tiny-33k"]
    )
    p.add_argument("--archs", type=_strs, default=["mdm", "arm"])
    _data_args(p)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--length", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--ssl-prob", type=float, default=0.0)
    p.add_argument("--eval-samples", type=int, default=16)
    p.add_argument("--min-steps", type=int, default=35, help="skip (budget, size) pairs buying fewer steps")
    p.add_argument("--max-steps", type=int, default=500, help="skip (budget, size) pairs buying more steps")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming OUT/runs.csv")
    add_common_args(p, out_default="runs/sweep")

    p = sub.add_parser(
        "fit",
        help="fit L*(C) = A·C^-alpha and N*(C) = k·C^beta per arch; plot IsoFLOPs/frontier",
        description="Fit the scaling laws of a runs CSV (columns arch,params,tokens,flops,loss; budget optional): "
        "per arch the IsoFLOP minima (a parabola in log N per budget), then L*(C) = A·C^-alpha and "
        'N*(C) = k·C^beta. With --json prints {"<arch>": {"A", "alpha", "k", "beta", "points"}, ..., '
        '"compute_gap": {...}, "figures": [...]}; writes isoflop.png and frontier.png to --out (default: the '
        "CSV's folder).",
    )
    p.add_argument("runs", help="CSV with columns arch,params,tokens,flops,loss (budget optional)")
    p.add_argument("--reference", default="arm", help="arch the compute gap is measured against")
    p.add_argument("--overwrite", action="store_true")
    add_common_args(p)

    p = sub.add_parser(
        "eval", help="zero-shot accuracy on JSONL tasks (context/choices/answer or context/target)"
    )
    p.add_argument("tasks", nargs="*", help="task files; none: an offline cloze task from the bundled corpus")
    _model_args(p)
    p.add_argument("--method", choices=["mc", "chain_rule"], default="mc")
    p.add_argument("--cfg", type=float, default=0.0, help="unsupervised CFG weight w (MDM)")
    p.add_argument("--num-samples", type=int, default=128, help="Monte Carlo draws per choice ('mc')")
    p.add_argument("--estimator", choices=["k", "lambda", "t"], default="k")
    p.add_argument(
        "--official-settings", action="store_true", help="per-task method/CFG of the official eval script"
    )
    p.add_argument("--limit", type=int, default=None, help="first N examples per task")
    p.add_argument("--cloze", type=int, default=50, help="examples of the built-in cloze task")
    add_common_args(p)

    p = sub.add_parser("generate", help="sample text from an MDM (radd sampler, CFG) or an ARM (KV cache)")
    _model_args(p)
    p.add_argument("--prompt", default="The ")
    p.add_argument("--length", type=int, default=64, help="total length in tokens, prompt included")
    p.add_argument("--steps", type=int, default=32, help="MDM sampling steps")
    p.add_argument("--cfg", type=float, default=0.0)
    p.add_argument("--remasking", choices=["random", "confidence"], default="random")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--num-samples", type=int, default=2)
    add_common_args(p)

    p = sub.add_parser(
        "speed", help="generation time and quality: MDM at several step counts vs ARM+KV cache"
    )
    p.add_argument("--mdm", help="MDM folder (default: train a tiny one)")
    p.add_argument("--arm", help="ARM folder (default: train a tiny one)")
    p.add_argument("--reference", help="ARM scoring the samples (default: train an independent one)")
    p.add_argument("--preset", default="tiny-49k", help="size of the models trained when none is given")
    p.add_argument("--train-steps", type=int, default=400)
    p.add_argument("--mdm-steps", type=_ints, default=[8, 16, 32, 64])
    p.add_argument("--prompt-len", type=int, default=8)
    p.add_argument("--length", type=int, default=64)
    p.add_argument("--num-samples", type=int, default=16)
    p.add_argument("--remasking", choices=["random", "confidence"], default="random")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--cfg", type=float, default=0.0, help="MDM unsupervised CFG weight (doubles its NFE)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per method; the fastest counts")
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.0,
        help="nats/token by which an MDM may trail the ARM and still count as matched quality",
    )
    add_common_args(p)

    p = sub.add_parser("reverse", help="reverse curse on synthetic 'NAME is DESCRIPTION' facts (both archs)")
    p.add_argument("--facts", type=int, default=24)
    p.add_argument("--preset", default="tiny-49k")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--sample-steps", type=int, default=16)
    p.add_argument("--cfg", type=float, default=0.0, help="MDM guidance (official reverse eval: 0.8)")
    add_common_args(p)

    p = sub.add_parser("shift", help="loss on held-out vs shifted text (temporal/distribution shift)")
    p.add_argument("--text", help="training text file (default: bundled corpus)")
    p.add_argument("--shifted", help="shifted text file (default: stdlib docstrings)")
    p.add_argument("--preset", default="tiny-49k")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--length", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--eval-samples", type=int, default=32)
    add_common_args(p)

    p = sub.add_parser("convert", help="convert an official SMDM checkpoint to a save_pretrained folder")
    p.add_argument("checkpoint", help="official .safetensors (or fabric .pth) file")
    p.add_argument("--preset", help="paper size, e.g. 170M (gives the head count)")
    p.add_argument("--n-head", type=int)
    p.add_argument("--block-size", type=int, default=2048)
    p.add_argument("--overwrite", action="store_true")
    add_common_args(p, out_default="runs/converted")

    p = sub.add_parser("bench", help="KV cache, radd cache and CFG cost, each against a baseline in one run")
    p.add_argument("--preset", default="tiny-49k")
    p.add_argument("--length", type=int, default=64)
    p.add_argument(
        "--steps", type=int, default=128, help="MDM steps (the cache pays when steps >= new tokens)"
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    add_common_args(p)
    return parser


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text", help="training text file, character level (default: the bundled pydoc corpus)")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model folder (save_pretrained) of either arch")
    p.add_argument("--smdm", help="an official SMDM checkpoint file instead of --model")
    p.add_argument("--preset", help="with --smdm: the paper size (e.g. 1028M)")
    p.add_argument("--tokenizer", help="tokenizer.json or HF tokenizer (default: MODEL/tokenizer.json)")


# ------------------------------------------------------------------------------------------------- helpers


def _show(args) -> bool | None:
    return False if args.json else progress_enabled()


def _device(args) -> torch.device:
    from gen_common.device import resolve_device

    return resolve_device(args.device)


def _data(args):
    from mdm_scaling.data import TokenData

    if getattr(args, "text", None):
        p = Path(args.text)
        if not p.is_file():
            raise FileNotFoundError(f"text file not found: {p}")
        return TokenData.from_text(p.read_text(encoding="utf-8"))
    return TokenData.bundled()


def _load(args):
    from mdm_scaling.convert import load_smdm_checkpoint
    from mdm_scaling.model import load_model
    from mdm_scaling.tokenizers import load_tokenizer

    dev = _device(args)
    if args.smdm:
        model = load_smdm_checkpoint(args.smdm, preset_name=args.preset, device=dev)
        if not args.tokenizer:
            raise ValueError("--smdm needs --tokenizer (the TinyLlama tokenizer folder the checkpoint uses)")
    elif args.model:
        model = load_model(args.model, device=dev)
    else:
        raise ValueError("pass --model DIR (a trained model) or --smdm CKPT --preset SIZE --tokenizer TOK")
    tok = load_tokenizer(args.tokenizer or args.model)
    vocab = getattr(tok, "vocab_size", None)
    if isinstance(vocab, int) and vocab > model.config.vocab_size:
        raise ValueError(f"tokenizer has {vocab} tokens but the model only {model.config.vocab_size}")
    return model, tok


def _refuse(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")


# ------------------------------------------------------------------------------------------------ commands


def cmd_presets(args) -> dict[str, Any]:
    from mdm_scaling.config import PRESETS, non_embedding_params, preset

    rows = []
    for name, (nl, h, d, f) in PRESETS.items():
        rows.append([name, nl, h, d, f, non_embedding_params(preset(name, vocab_size=args.vocab_size))])
    return {"columns": ["preset", "layers", "heads", "d_model", "ffn", "non_embedding_params"], "rows": rows}


def cmd_train(args) -> dict[str, Any]:
    from gen_common.seeding import make_generator
    from mdm_scaling.compute import mean_sequence_length, training_flops
    from mdm_scaling.config import preset
    from mdm_scaling.data import eval_windows, load_sft_pairs, make_batch_fn, make_sft_batch_fn
    from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM, load_model
    from mdm_scaling.objectives import loss_fn_for, sft_loss_fn_for, validation_loss
    from mdm_scaling.tokenizers import load_tokenizer
    from mdm_scaling.trainer import TrainSettings, train_lm

    out = Path(args.out)
    _refuse(out / "model" / "config.json", args.overwrite)
    if args.prompt_dropout and not args.sft:
        raise ValueError("--prompt-dropout needs --sft (prompts to drop)")
    cls = MaskedDiffusionLM if args.arch == "mdm" else AutoregressiveLM
    if args.init:
        model = load_model(args.init)
        if not isinstance(model, cls):
            raise ValueError(
                f"--init holds a {type(model).__name__}, not a {cls.__name__} (--arch {args.arch})"
            )
        tok = load_tokenizer(args.init)
    else:
        tok = None
    if args.sft:
        if tok is None:
            raise ValueError(
                "--sft fine-tunes a trained model: pass --init MODEL_DIR (its tokenizer is reused)"
            )
        pairs = load_sft_pairs(args.sft)
        pad = tok.encode("\n") if hasattr(tok, "alphabet") and "\n" in tok.alphabet else [0]
        batch_fn = make_sft_batch_fn(pairs, tok, args.batch_size, args.length, int(pad[0]))
        loss_fn = sft_loss_fn_for(model, args.prompt_dropout)
        data = None
    else:
        data = _data(args) if tok is None else _data_with(args, tok)
        batch_fn = make_batch_fn(data.train, args.batch_size, args.length, args.ssl_prob)
        loss_fn = None
        tok = data.tokenizer
    if not args.init:
        cfg = preset(args.preset, vocab_size=data.vocab_size, block_size=args.length + 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            model = cls(cfg)
        loss_fn = loss_fn_for(model)
    settings = TrainSettings(
        steps=args.steps, lr=args.lr, seed=args.seed, checkpoint_every=args.checkpoint_every, log_every=50
    )
    res = train_lm(
        model,
        batch_fn,
        settings,
        loss_fn=loss_fn,
        out_dir=out / "checkpoints",
        device=_device(args),
        show_progress=_show(args),
        compile=args.compile,
    )
    model.eval()
    loss = None
    if data is not None:
        val = eval_windows(data.val, 64, args.length).to(next(model.parameters()).device)
        loss = validation_loss(model, val, num_samples=args.eval_samples, generator=make_generator(args.seed))
    model.save_pretrained(out / "model", overwrite=args.overwrite)
    if tok is not None and hasattr(tok, "save"):
        tok.save(out / "model" / "tokenizer.json")
    tokens = (
        args.steps * args.batch_size * mean_sequence_length(args.length, 0.0 if args.sft else args.ssl_prob)
    )
    return {
        "arch": args.arch,
        "preset": model.config.name or args.preset,
        "params": model.num_params(),
        "total_params": model.num_params(non_embedding=False),
        "steps": args.steps,
        "resumed_from": res.resumed_from,
        "tokens": tokens,
        "flops": training_flops(model.num_params(), tokens),
        "train_loss": res.final_loss,
        "val_loss": loss,
        "model": str(out / "model"),
    }


def _data_with(args, tok):
    """The training text encoded with an existing model's tokenizer (continued pre-training)."""
    from gen_common.text import bundled_corpus, split_tokens
    from mdm_scaling.data import TokenData

    text = Path(args.text).read_text(encoding="utf-8") if args.text else bundled_corpus()
    ids = torch.as_tensor(
        tok.encode(text, errors="replace") if hasattr(tok, "alphabet") else tok.encode(text)
    )
    tr, va = split_tokens(ids, 0.05)
    return TokenData(tr, va, tok.vocab_size, tok)


def cmd_sweep(args) -> dict[str, Any]:
    from mdm_scaling.scaling import fit_scaling_laws
    from mdm_scaling.sweep import SweepConfig, run_sweep

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "runs.csv"
    if csv_path.exists() and args.overwrite:
        csv_path.unlink()
    cfg = SweepConfig(
        budgets=tuple(args.budgets),
        sizes=tuple(args.sizes),
        archs=tuple(args.archs),
        batch_size=args.batch_size,
        length=args.length,
        lr=args.lr,
        ssl_prob=args.ssl_prob,
        eval_samples=args.eval_samples,
        min_steps=args.min_steps,
        max_steps=args.max_steps,
        seed=args.seed,
    )
    rows = run_sweep(cfg, _data(args), csv_path=csv_path, device=_device(args), progress=_show(args))
    if not rows:
        raise ValueError(
            "no (budget, size) pair buys between --min-steps and --max-steps steps; widen the grid"
        )
    result: dict[str, Any] = {"runs": len(rows), "csv": str(csv_path)}
    try:
        fits = fit_scaling_laws(rows)
        result["fit"] = {
            a: {"A": f.A, "alpha": f.alpha, "beta": f.beta, "bracketed": f"{f.bracketed} of {len(f.points)}"}
            for a, f in fits.items()
        }
    except ValueError as exc:
        result["fit"] = f"not enough runs to fit: {exc}"
    return result


def cmd_fit(args) -> dict[str, Any]:
    import numpy as np

    from mdm_scaling.scaling import compute_gap, fit_scaling_laws, plot_frontier, plot_isoflops, read_runs

    rows = read_runs(args.runs)
    out = Path(args.out) if args.out else Path(args.runs).parent
    iso, front = out / "isoflop.png", out / "frontier.png"
    for p in (iso, front):
        _refuse(p, args.overwrite)
    fits = fit_scaling_laws(rows)
    result: dict[str, Any] = {a: f.to_dict() for a, f in fits.items()}
    if args.reference in fits and len(fits) > 1:
        budgets = sorted({p.budget for f in fits.values() for p in f.points})
        mid = float(np.exp(np.mean(np.log(budgets))))
        result["compute_gap"] = {
            "reference": args.reference,
            "at_budget": mid,
            **{
                a: {
                    "gap": compute_gap(fits[args.reference], f, mid),
                    "per_budget": {str(c): compute_gap(fits[args.reference], f, c) for c in budgets},
                }
                for a, f in fits.items()
                if a != args.reference
            },
        }
    out.mkdir(parents=True, exist_ok=True)
    result["figures"] = [str(plot_isoflops(rows, fits, iso)), str(plot_frontier(fits, front))]
    return result


def cmd_eval(args) -> dict[str, Any]:
    from gen_common.seeding import make_generator
    from gen_common.text import bundled_corpus
    from mdm_scaling.objectives import is_autoregressive
    from mdm_scaling.zeroshot import (
        OFFICIAL_TASK_SETTINGS,
        CausalLMScorer,
        MaskedLMScorer,
        cloze_task,
        evaluate_task,
        load_jsonl_task,
    )

    model, tok = _load(args)
    tasks = [load_jsonl_task(t) for t in args.tasks]
    if not tasks:
        tasks = [cloze_task(bundled_corpus()[-60_000:], args.cloze, seed=args.seed, name="pydoc-cloze")]
    results = {}
    for task in tasks:
        if is_autoregressive(model):
            scorer = CausalLMScorer(model)
        else:
            method, cfg = args.method, args.cfg
            if args.official_settings and task.name.lower() in OFFICIAL_TASK_SETTINGS:
                s = OFFICIAL_TASK_SETTINGS[task.name.lower()]
                method, cfg = s["method"], s["cfg"]
            scorer = MaskedLMScorer(
                model,
                method=method,
                cfg=cfg,
                num_samples=args.num_samples,
                estimator=args.estimator,
                generator=make_generator(args.seed),
            )
        results[task.name] = evaluate_task(scorer, tok, task, limit=args.limit, progress=_show(args))
    return {"model": args.model or args.smdm, "tasks": results}


def cmd_generate(args) -> dict[str, Any]:
    from gen_common.seeding import make_generator
    from mdm_scaling.generation import arm_generate, mdm_generate
    from mdm_scaling.objectives import is_autoregressive

    model, tok = _load(args)
    ids = tok.encode(args.prompt)
    ids = torch.as_tensor(ids if not isinstance(ids, torch.Tensor) else ids.tolist(), dtype=torch.long)
    dev = next(model.parameters()).device
    if len(ids) >= args.length:
        raise ValueError(f"the prompt has {len(ids)} tokens; --length {args.length} leaves no room")
    gen = make_generator(args.seed)
    if is_autoregressive(model):
        out = arm_generate(
            model, ids.to(dev)[None].repeat(args.num_samples, 1), args.length - len(ids),
            temperature=args.temperature, generator=gen,
        )  # fmt: skip
        tokens, nfe = out.tokens, out.nfe
    else:
        o = mdm_generate(
            model, ids.to(dev), args.length, args.steps, cfg=args.cfg, remasking=args.remasking,
            temperature=args.temperature, generator=gen, num_samples=args.num_samples,
        )  # fmt: skip
        tokens, nfe = o.tokens, o.nfe
    return {"samples": [tok.decode(t.tolist()) for t in tokens.cpu()], "nfe": nfe}


def cmd_speed(args) -> dict[str, Any]:
    from mdm_scaling.config import preset
    from mdm_scaling.data import eval_windows, make_batch_fn
    from mdm_scaling.model import load_model
    from mdm_scaling.objectives import is_autoregressive
    from mdm_scaling.speed import matched_quality_speedup, speed_table
    from mdm_scaling.trainer import TrainSettings, train_pair

    dev = _device(args)
    if not 1 <= args.prompt_len < args.length:
        raise ValueError(f"--prompt-len {args.prompt_len} must be in [1, --length {args.length})")
    if args.num_samples < 1 or args.repeats < 1 or args.train_steps < 1:
        raise ValueError("--num-samples, --repeats and --train-steps must be >= 1")
    if args.mdm and args.arm:
        mdm, arm = load_model(args.mdm, device=dev), load_model(args.arm, device=dev)
        if mdm.config.vocab_size != arm.config.vocab_size:
            raise ValueError("the MDM and the ARM must share a vocabulary")
        if is_autoregressive(mdm) or not is_autoregressive(arm):
            raise ValueError("--mdm must be a MaskedDiffusionLM folder and --arm an AutoregressiveLM folder")
        for name, m in (("--mdm", mdm), ("--arm", arm)):
            if m.config.block_size < args.length:
                raise ValueError(f"{name} has block_size {m.config.block_size} < --length {args.length}")
        from mdm_scaling.tokenizers import load_tokenizer

        tok = load_tokenizer(args.mdm)
        data = _data(argparse.Namespace(text=None))
        if getattr(tok, "alphabet", None) != data.tokenizer.alphabet:
            raise ValueError(
                "the given models were not trained on the bundled corpus alphabet; prompts need it"
            )
    elif args.mdm or args.arm:
        raise ValueError("pass both --mdm and --arm, or neither (tiny ones are trained)")
    else:
        data = _data(argparse.Namespace(text=None))
        # Trained on windows as long as the generated sequences: a model asked for longer text than it was trained
        # on is out of distribution (the bidirectional MDM most of all), which would bias the comparison.
        cfg = preset(args.preset, vocab_size=data.vocab_size, block_size=args.length + 1)
        models = train_pair(
            make_batch_fn(data.train, 16, args.length),
            cfg,
            TrainSettings(steps=args.train_steps, lr=1e-2, log_every=args.train_steps, seed=args.seed),
            steps={"mdm": args.train_steps * 2, "arm": args.train_steps},
            device=dev,
            show_progress=_show(args),
        )
        mdm, arm = models["mdm"], models["arm"]
    if args.reference:
        ref = load_model(args.reference, device=dev)
        if not is_autoregressive(ref):
            raise ValueError(
                "--reference must be an AutoregressiveLM folder (it scores samples left to right)"
            )
        if ref.config.vocab_size != arm.config.vocab_size or ref.config.block_size < args.length - 1:
            raise ValueError("--reference must share the models' vocabulary and cover --length tokens")
        ref_name = args.reference
    else:
        # An ARM scoring its own samples flatters them; score with an independently trained one (another seed).
        cfg = arm.config
        ref = train_pair(
            make_batch_fn(data.train, 16, args.length),
            cfg.replace(block_size=max(cfg.block_size, args.length)),
            TrainSettings(
                steps=args.train_steps * 2, lr=1e-2, log_every=args.train_steps * 2, seed=args.seed + 1
            ),
            archs=("arm",),
            device=dev,
            show_progress=_show(args),
        )["arm"]
        ref_name = f"an independent ARM ({cfg.name or 'same size'}, seed {args.seed + 1}, {args.train_steps * 2} steps)"
    prompts = eval_windows(data.val, args.num_samples, args.prompt_len)[:, : args.prompt_len]
    rows = speed_table(
        mdm, arm, ref, prompts, args.length, mdm_steps=args.mdm_steps, remasking=args.remasking,
        temperature=args.temperature, cfg=args.cfg, seed=args.seed, repeats=args.repeats,
    )  # fmt: skip
    return {
        "rows": rows,
        "matched": matched_quality_speedup(rows, tolerance=args.tolerance),
        "reference": ref_name,
    }


def cmd_reverse(args) -> dict[str, Any]:
    from mdm_scaling.reverse import run_reverse_study

    res = run_reverse_study(
        args.facts, size=args.preset, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        sample_steps=args.sample_steps, cfg=args.cfg, seed=args.seed, device=_device(args), progress=_show(args),
    )  # fmt: skip
    return {k: v for k, v in res.items() if k not in ("models", "facts")}


def cmd_shift(args) -> dict[str, Any]:
    from mdm_scaling.shift import run_shift_study

    def read(p):
        if p is None:
            return None
        if not Path(p).is_file():
            raise FileNotFoundError(f"text file not found: {p}")
        return Path(p).read_text(encoding="utf-8")

    rows = run_shift_study(
        read(args.text), read(args.shifted), size=args.preset, steps=args.steps, length=args.length, lr=args.lr,
        num_samples=args.eval_samples, seed=args.seed, device=_device(args), progress=_show(args),
    )  # fmt: skip
    return {"rows": rows}


def cmd_convert(args) -> dict[str, Any]:
    from mdm_scaling.convert import load_smdm_checkpoint

    out = Path(args.out)
    if not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint not found: {args.checkpoint}")
    model = load_smdm_checkpoint(
        args.checkpoint, preset_name=args.preset, n_head=args.n_head, block_size=args.block_size
    )
    model.save_pretrained(out, overwrite=args.overwrite, source=str(args.checkpoint))
    return {
        "class": type(model).__name__,
        "config": model.config,
        "params": model.num_params(),
        "out": str(out),
    }


def cmd_bench(args) -> dict[str, Any]:
    from mdm_scaling.bench import run_benchmarks

    rows = run_benchmarks(
        size=args.preset, length=args.length, steps=args.steps, batch=args.batch_size, repeats=args.repeats,
        device=_device(args),
    )  # fmt: skip
    return {"rows": rows, "device": str(_device(args))}


COMMANDS = {
    "presets": cmd_presets,
    "train": cmd_train,
    "sweep": cmd_sweep,
    "fit": cmd_fit,
    "eval": cmd_eval,
    "generate": cmd_generate,
    "speed": cmd_speed,
    "reverse": cmd_reverse,
    "shift": cmd_shift,
    "convert": cmd_convert,
    "bench": cmd_bench,
}


def _table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    return format_table(cols, [[r[c] for c in cols] for r in rows])


def _human(command: str):
    def fmt(res) -> str:
        if command == "presets":
            return format_table(res["columns"], res["rows"])
        if command == "speed":
            m = res["matched"]
            if m["speedup"] is None:
                verdict = (
                    f"no MDM setting reaches the ARM's quality ({m['arm_gen_nll']:.3f} ± {m['arm_gen_nll_se']:.3f}"
                    f" nats/token); closest: {m['best_mdm_steps']} steps at {m['best_mdm_gen_nll']:.3f}"
                    f" (+{m['gap']:.3f})"
                )
            else:
                verdict = f"matched quality at {m['matched_steps']} MDM steps: {m['speedup']:.2f}x the ARM+KV-cache speed"
            return _table(res["rows"]) + f"\n{verdict}\nquality scored by {res['reference']}"
        if command in ("reverse", "shift", "bench"):
            extra = {k: v for k, v in res.items() if k != "rows"}
            return _table(res["rows"]) + (
                "\n" + "\n".join(f"{k}: {v}" for k, v in extra.items()) if extra else ""
            )
        if command == "eval":
            return _table(list(res["tasks"].values()))
        if command == "generate":
            return "\n---\n".join(res["samples"]) + f"\n(nfe {res['nfe']:.1f})"
        if command == "fit":
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
            gap = res.get("compute_gap")
            if gap:
                for a, g in gap.items():
                    if isinstance(g, dict):
                        lines.append(
                            f"compute gap {a}/{gap['reference']} at C={gap['at_budget']:.3g}: {g['gap']:.3g}x"
                        )
            lines.append("figures: " + ", ".join(res["figures"]))
            return "\n".join(lines)
        return "\n".join(f"{k}: {v}" for k, v in res.items())

    return fmt


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    result = COMMANDS[args.command](args)
    emit(result, as_json=args.json, human=_human(args.command))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv, prog="mdm-scaling")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
