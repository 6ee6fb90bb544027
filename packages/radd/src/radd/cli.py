"""Console script ``radd``: train, sample, eval, convert, bench.

Every subcommand takes ``--device``, ``--seed``, ``--json`` (one JSON object on stdout) and ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gen_common.atomic import atomic_write_json, atomic_write_text
from gen_common.cli import add_common_args, emit, format_table, run_cli
from gen_common.device import autocast, device_summary, resolve_device, resolve_dtype
from gen_common.pretrained import prepare_output_dir
from gen_common.training import TrainConfig

DESCRIPTION = """\
Reparameterized absorbing discrete diffusion (RADD): a time-independent masked language model, its four
DCE/DSE losses, likelihood bounds, and diffusion samplers with the cache that skips unchanged sequences.

  radd train  --out runs/tiny            train a small character model on the bundled corpus (offline)
  radd sample --model runs/tiny          sample text (cached analytic sampler; --ordered for any-order AR)
  radd eval   --model runs/tiny          NLL bound / perplexity with the k-, λ- or t-DCE estimator
  radd convert SRC DST                   official checkpoint (JingyangOu/radd-*) -> this package's folder
  radd bench                             cached vs uncached sampling: NFE vs formula, wall-clock ratio
"""


def _add_model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "--model",
        required=required,
        help="model folder (from `radd train`/`radd convert`, or an official checkpoint folder) or a Hugging Face id",
    )
    p.add_argument(
        "--tokenizer",
        default=None,
        help="'char', a char tokenizer JSON, or a LOCAL Hugging Face tokenizer folder (GPT-2 for the released "
        "checkpoints); default: the tokenizer saved in the model folder",
    )
    p.add_argument(
        "--dtype", default="auto", help="auto (bf16 autocast on CUDA, fp32 on CPU), float32, bfloat16"
    )
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the model (pays off on GPU for long runs)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radd", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a RADD model (offline on the bundled corpus by default)")
    add_common_args(t, out_default="runs/radd-tiny")
    t.add_argument("--text", default=None, help="UTF-8 training text (default: the bundled pydoc corpus)")
    t.add_argument(
        "--tokenizer",
        default="char",
        help="'char' (default: one id per character of the bundled corpus, or of --text) or a local Hugging Face "
        "tokenizer folder",
    )
    t.add_argument("--max-chars", type=int, default=None, help="use only the first N characters of the text")
    t.add_argument("--length", type=int, default=64, help="sequence length (default: %(default)s)")
    t.add_argument("--hidden", type=int, default=64, help="hidden size (default: %(default)s)")
    t.add_argument("--layers", type=int, default=2, help="transformer blocks (default: %(default)s)")
    t.add_argument("--heads", type=int, default=4, help="attention heads (default: %(default)s)")
    t.add_argument("--dropout", type=float, default=0.0, help="residual dropout (official: 0.02)")
    t.add_argument(
        "--loss", default="lambda_dce", help="t_dse | t_dce | lambda_dce | k_dce (default: %(default)s)"
    )
    t.add_argument("--steps", type=int, default=300, help="optimizer steps (default: %(default)s)")
    t.add_argument("--batch-size", type=int, default=32, help="sequences per step (default: %(default)s)")
    t.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: %(default)s)")
    t.add_argument("--warmup", type=int, default=20, help="warmup steps (default: %(default)s)")
    t.add_argument("--schedule", default="cosine", choices=["cosine", "constant"])
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--ema", type=float, default=None, help="EMA decay, e.g. 0.999 (default: off)")
    t.add_argument("--grad-clip", type=float, default=1.0)
    t.add_argument(
        "--checkpoint-every", type=int, default=0, help="checkpoint period in steps (0: at the end)"
    )
    t.add_argument("--eval-samples", type=int, default=16, help="Monte Carlo draws for the final NLL bound")
    t.add_argument("--no-resume", action="store_true", help="ignore checkpoints in OUT/checkpoints")
    t.add_argument("--overwrite", action="store_true", help="replace a finished model in --out")

    s = sub.add_parser("sample", help="sample sequences (diffusion sampler with cache, or any-order AR)")
    add_common_args(s)
    _add_model_args(s)
    s.add_argument("--num-samples", type=int, default=4)
    s.add_argument(
        "--length", type=int, default=None, help="tokens per sample (default: the model's max_length)"
    )
    s.add_argument("--steps", type=int, default=None, help="sampling steps (default: length)")
    s.add_argument("--method", default="analytic", choices=["analytic", "euler"])
    s.add_argument("--remasking", default="random", choices=["random", "confidence"])
    s.add_argument(
        "--no-cache", action="store_true", help="re-evaluate every sequence at every step (baseline)"
    )
    s.add_argument(
        "--ordered", default=None, metavar="ORDER", help="any-order AR sampler: random|forward|backward"
    )
    s.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    s.add_argument("--top-k", type=int, default=None)
    s.add_argument("--top-p", type=float, default=None)
    s.add_argument("--prefix", default=None, help="text the samples start with")
    s.add_argument("--suffix", default=None, help="text the samples end with")
    s.add_argument("--overwrite", action="store_true", help="replace OUT/samples.txt")

    e = sub.add_parser("eval", help="NLL bound (nats/token) and perplexity on a text")
    add_common_args(e)
    _add_model_args(e)
    e.add_argument(
        "--text", default=None, help="UTF-8 text (default: the validation tail of the bundled corpus)"
    )
    e.add_argument(
        "--estimator", default="k", choices=["k", "lambda", "t"], help="DCE estimator (default: k)"
    )
    e.add_argument("--num-samples", type=int, default=32, help="Monte Carlo draws per sequence")
    e.add_argument("--num-sequences", type=int, default=32, help="windows evaluated")
    e.add_argument("--length", type=int, default=None, help="window length (default: the model's max_length)")
    e.add_argument("--batch-size", type=int, default=None, help="rows per forward pass")

    c = sub.add_parser("convert", help="official RADD checkpoint -> this package's model folder")
    add_common_args(c)
    c.add_argument(
        "src",
        help="official folder (config.json + model.safetensors/pytorch_model.bin), weights file, or hub id",
    )
    c.add_argument("dst", help="output folder")
    c.add_argument(
        "--tokenizer", default=None, help="local tokenizer folder to copy beside the weights (e.g. gpt2)"
    )
    c.add_argument(
        "--no-ema",
        action="store_true",
        help="from an official training checkpoint (checkpoint.pth), take the raw weights instead of the EMA",
    )
    c.add_argument("--overwrite", action="store_true")

    b = sub.add_parser("bench", help="cached vs uncached sampling: NFE vs expected_nfe and wall-clock ratio")
    add_common_args(b)
    _add_model_args(b, required=False)
    b.add_argument("--length", type=int, default=128)
    b.add_argument("--steps", type=int, nargs="+", default=[128, 512], help="step counts (default: 128 512)")
    b.add_argument("--num-samples", type=int, default=4, help="batch size of the timed runs")
    b.add_argument("--nfe-samples", type=int, default=32, help="sequences for the NFE statistic")
    b.add_argument("--repeats", type=int, default=2)
    b.add_argument("--hidden", type=int, default=128, help="random model size when --model is not given")
    b.add_argument("--layers", type=int, default=2)
    b.add_argument("--heads", type=int, default=4)
    b.add_argument("--vocab", type=int, default=103)
    return parser


def _load(args: argparse.Namespace, device: torch.device) -> tuple[Any, Any]:
    from radd.model import RADD
    from radd.tokenizers import load_tokenizer

    model = RADD.from_pretrained(args.model, device=device)
    spec = args.tokenizer
    if spec is None:
        p = Path(args.model).expanduser()
        if not p.is_dir():
            raise ValueError("pass --tokenizer (a local tokenizer folder) for a model loaded from the hub")
        spec = str(p)
    tok = load_tokenizer(spec)
    if tok.vocab_size != model.config.vocab_size:
        raise ValueError(
            f"the tokenizer has {tok.vocab_size} tokens but the model {model.config.vocab_size}; "
            "pass the tokenizer the model was trained with (--tokenizer)"
        )
    if getattr(args, "compile", False):
        model = torch.compile(model, dynamic=True)
    return model, tok


def _load_for_length(args: argparse.Namespace, device: torch.device) -> tuple[Any, Any, Any, int]:
    """Model, tokenizer, config and the sequence length (``--length`` or the model's; never beyond it)."""
    model, tok = _load(args, device)
    cfg = model.config  # also through torch.compile's wrapper
    length = args.length or cfg.max_length
    if length > cfg.max_length:
        raise ValueError(
            f"--length {length} exceeds the model's max_length {cfg.max_length} (the length it was trained at)"
        )
    return model, tok, cfg, length


def _dtype(args: argparse.Namespace, device: torch.device) -> torch.dtype:
    return resolve_dtype(getattr(args, "dtype", "auto"), device)


def _cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    import radd
    from radd.data import TokenData, load_text
    from radd.model import RADD, RADDConfig
    from radd.tokenizers import CharTokenizerAdapter, load_tokenizer
    from radd.training import train_radd

    device = resolve_device(args.device)
    out = Path(args.out)
    prepare_output_dir(out, overwrite=args.overwrite)
    ckpt_dir = out / "checkpoints"
    if args.overwrite and ckpt_dir.is_dir():
        shutil.rmtree(ckpt_dir)  # start over: these are this command's own checkpoints
    radd.get_loss(args.loss)  # fail fast on a typo
    text = load_text(args.text, args.max_chars)
    # 'char': the alphabet of the whole bundled corpus (what `radd eval` scores by default), or of the --text file
    # itself, so that none of the training characters is replaced
    if args.tokenizer == "char":
        tok = CharTokenizerAdapter.from_corpus(text if args.text is not None else None)
    else:
        tok = load_tokenizer(args.tokenizer)
    data = TokenData.from_ids(tok.encode(text), args.length)
    config = RADDConfig(
        vocab_size=tok.vocab_size,
        max_length=args.length,
        hidden_size=args.hidden,
        num_layers=args.layers,
        num_heads=args.heads,
        dropout=args.dropout,
    )
    torch.manual_seed(args.seed)  # the initial weights
    model = RADD(config)
    tcfg = TrainConfig(
        steps=args.steps,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup,
        schedule=args.schedule,
        min_lr_ratio=0.1,
        grad_clip=args.grad_clip,
        ema_decay=args.ema,
        log_every=max(1, args.steps // 10),
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    t0 = time.perf_counter()
    res = train_radd(
        model,
        data.batch_fn(args.batch_size),
        tcfg,
        loss=args.loss,
        out_dir=ckpt_dir,
        resume=not args.no_resume,
        device=device,
        show_progress=False if args.json else None,
    )
    train_s = time.perf_counter() - t0
    model.eval()
    val = data.val_windows(32).to(device)
    nll = radd.estimate_nll(model, val, args.eval_samples, "k", torch.Generator().manual_seed(args.seed))
    per_token = float(nll.mean()) / args.length
    tok.save(out)
    model.save_pretrained(out, overwrite=True, loss=args.loss, steps=res.steps)
    result = {
        "model": str(out),
        "params": model.num_parameters(),
        "steps": res.steps,
        "resumed_from": res.resumed_from,
        "final_train_loss": res.final_loss,
        "val_nll_bound_nats_per_token": per_token,
        "val_unigram_baseline_nats": data.unigram_baseline(val.cpu(), tok.vocab_size),
        "train_unigram_entropy_nats": data.unigram_entropy(tok.vocab_size),
        "train_seconds": train_s,
        "history": res.history,
    }
    atomic_write_json(out / "train_log.json", result)
    return result


def _unknown(tok: Any, text: str) -> int:
    count = getattr(tok, "unknown_characters", None)
    return int(count(text)) if count is not None else 0


def _encode_optional(tok: Any, text: str | None) -> torch.Tensor | None:
    if text is None:
        return None
    if _unknown(tok, text):
        raise ValueError(
            f"the prefix/suffix {text!r} has characters outside the model's alphabet; the samples could not keep them"
        )
    ids = tok.encode(text)
    if ids.numel() == 0:
        raise ValueError("the prefix/suffix encodes to no tokens")
    return ids


def _cmd_sample(args: argparse.Namespace) -> dict[str, Any]:
    import radd

    device = resolve_device(args.device)
    model, tok, cfg, length = _load_for_length(args, device)
    gen = torch.Generator().manual_seed(args.seed)
    common = dict(
        generator=gen,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        prefix=_encode_optional(tok, args.prefix),
        suffix=_encode_optional(tok, args.suffix),
        mask_id=cfg.vocab_size,
        device=device,
        progress=False if args.json else None,
    )
    t0 = time.perf_counter()
    with autocast(device, _dtype(args, device)):
        if args.ordered:
            out = radd.sample_ordered(model, args.num_samples, length, order=args.ordered, **common)
        else:
            steps = args.steps or length
            out = radd.sample(
                model,
                args.num_samples,
                length,
                steps,
                cache=not args.no_cache,
                method=args.method,
                remasking=args.remasking,
                **common,
            )
    seconds = time.perf_counter() - t0
    texts = [tok.decode(row) for row in out.tokens.cpu()]
    result = {
        "samples": texts,
        "steps": out.steps,
        "nfe": out.nfe,
        "expected_nfe": out.expected_nfe,
        "seconds": seconds,
    }
    if args.out:
        d = Path(args.out)
        d.mkdir(parents=True, exist_ok=True)
        f = d / "samples.txt"
        if f.exists() and not args.overwrite:
            raise FileExistsError(f"{f} exists; pass --overwrite or choose another --out")
        atomic_write_text(f, "\n\n=====\n\n".join(texts) + "\n")
        result["file"] = str(f)
    return result


def _cmd_eval(args: argparse.Namespace) -> dict[str, Any]:
    import radd
    from radd.data import TokenData, load_text, unigram_entropy

    device = resolve_device(args.device)
    model, tok, cfg, length = _load_for_length(args, device)
    text = load_text(args.text)
    unknown = _unknown(tok, text)
    if unknown:
        # scored as the tokenizer's replacement character: the bound is for a slightly different text
        print(
            f"radd: warning: {unknown} character(s) of the text are outside the model's alphabet and were replaced",
            file=sys.stderr,
        )
    ids = tok.encode(text)
    if args.text is None:
        windows = TokenData.from_ids(ids, length).val_windows(args.num_sequences)
    else:
        n = min(args.num_sequences, len(ids) // length)
        if n < 1:
            raise ValueError(f"the text has {len(ids)} tokens, fewer than one window of {length}")
        windows = ids[: n * length].reshape(n, length)
    windows = windows.to(device)
    t0 = time.perf_counter()
    with autocast(device, _dtype(args, device)):
        nll, se = radd.estimate_nll(
            model,
            windows,
            args.num_samples,
            args.estimator,
            torch.Generator().manual_seed(args.seed),
            batch_size=args.batch_size,
            mask_id=cfg.vocab_size,
            return_stderr=True,
        )
    per_token = float(nll.double().mean()) / length
    return {
        "estimator": args.estimator,
        "num_sequences": int(windows.shape[0]),
        "length": length,
        "num_samples": args.num_samples,
        "nll_bound_nats_per_token": per_token,
        "stderr_nats_per_token": float(se.double().pow(2).mean().sqrt())
        / length
        / max(1, windows.shape[0]) ** 0.5,
        "perplexity_bound": radd.perplexity(nll, windows.numel()),
        "unigram_entropy_nats": unigram_entropy(ids, cfg.vocab_size),
        "replaced_characters": unknown,
        "seconds": time.perf_counter() - t0,
    }


def _cmd_convert(args: argparse.Namespace) -> dict[str, Any]:
    from radd.convert import convert_checkpoint
    from radd.tokenizers import load_tokenizer

    dst = convert_checkpoint(args.src, args.dst, overwrite=args.overwrite, ema=not args.no_ema)
    result: dict[str, Any] = {"source": args.src, "destination": str(dst)}
    if args.tokenizer:
        load_tokenizer(args.tokenizer).save(dst)
        result["tokenizer"] = args.tokenizer
    cfg = json.loads((dst / "config.json").read_text(encoding="utf-8"))
    result["config"] = {k: v for k, v in cfg.items() if not k.startswith("_")}
    return result


def _cmd_bench(args: argparse.Namespace) -> dict[str, Any]:
    from radd.bench import bench_cache
    from radd.model import RADD, RADDConfig

    device = resolve_device(args.device)
    if args.model:
        model, _ = _load(args, device)
        cfg = model.config  # also through torch.compile's wrapper
        source = args.model
    else:
        torch.manual_seed(args.seed)
        cfg = RADDConfig(
            vocab_size=args.vocab,
            max_length=args.length,
            hidden_size=args.hidden,
            num_layers=args.layers,
            num_heads=args.heads,
            dropout=0.0,
        )
        model = RADD(cfg).to(device).eval()
        torch.nn.init.normal_(model.head.weight, std=0.02)  # non-uniform predictions
        source = f"random RADD {args.layers}x{args.hidden}, V={args.vocab}"
    if args.length > cfg.max_length:
        raise ValueError(f"--length {args.length} exceeds the model's max_length {cfg.max_length}")
    rows = bench_cache(
        model,
        length=args.length,
        steps=list(args.steps),
        num_samples=args.num_samples,
        repeats=args.repeats,
        nfe_samples=args.nfe_samples,
        seed=args.seed,
        device=device,
        dtype=_dtype(args, device),
        mask_id=cfg.vocab_size,
    )
    return {
        "model": source,
        "device": device_summary(device),
        "num_samples": args.num_samples,
        "rows": [dataclasses.asdict(r) for r in rows],
    }


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
        for x in r["rows"]
    ]
    head = f"model: {r['model']}  device: {r['device']['device']}  batch: {r['num_samples']}  length: {r['rows'][0]['length']}"
    return (
        head
        + "\n"
        + format_table(cols, rows)
        + "\n(eff. = speed-up / NFE ratio; goal >= 0.9; NFE goal within 3%)"
    )


def _human_samples(r: Any) -> str:
    body = "\n\n".join(f"--- sample {i}\n{t}" for i, t in enumerate(r["samples"]))
    exp = f" (expected {r['expected_nfe']:.1f})" if r.get("expected_nfe") is not None else ""
    return f"{body}\n\nsteps {r['steps']}, NFE/sequence {r['nfe']:.1f}{exp}, {r['seconds']:.2f} s"


def _human_train(r: Any) -> str:
    return (
        f"saved {r['model']} ({r['params']} parameters, {r['steps']} steps, {r['train_seconds']:.1f} s)\n"
        f"validation NLL bound {r['val_nll_bound_nats_per_token']:.4f} nats/token "
        f"(unigram baseline on the same windows {r['val_unigram_baseline_nats']:.4f})"
    )


_COMMANDS = {
    "train": (_cmd_train, _human_train),
    "sample": (_cmd_sample, _human_samples),
    "eval": (_cmd_eval, None),
    "convert": (_cmd_convert, None),
    "bench": (_cmd_bench, _human_bench),
}


# Integer options that must be >= 1 (or >= 0) when given: caught here as one-line user errors, before any work
# (a zero or negative --length would otherwise fall back to the default or fail deep inside torch).
_AT_LEAST_ONE = ("length", "steps", "num_samples", "num_sequences", "batch_size", "eval_samples", "nfe_samples",
                 "repeats", "hidden", "layers", "heads", "vocab")  # fmt: skip
_AT_LEAST_ZERO = ("warmup", "checkpoint_every", "max_chars")


def _check_counts(args: argparse.Namespace) -> None:
    for names, low in ((_AT_LEAST_ONE, 1), (_AT_LEAST_ZERO, 0)):
        for name in names:
            value = getattr(args, name, None)
            # `train --steps 0` is allowed: it evaluates and saves the untrained model
            floor = 0 if (args.command, name) == ("train", "steps") else low
            for v in value if isinstance(value, list) else [] if value is None else [value]:
                if v < floor:
                    raise ValueError(f"--{name.replace('_', '-')} must be >= {floor}, got {v}")


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    _check_counts(args)
    fn, human = _COMMANDS[args.command]
    result = fn(args)
    if args.command in ("eval", "bench") and args.out:
        # keep a record of the numbers; never write over an earlier one
        f = Path(args.out) / f"{args.command}.json"
        if f.exists():
            raise FileExistsError(f"{f} exists; choose another --out")
        f.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(f, result)
        result = {**result, "file": str(f)}
    emit(result, as_json=args.json, human=human)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv, prog="radd")


if __name__ == "__main__":
    raise SystemExit(main())
