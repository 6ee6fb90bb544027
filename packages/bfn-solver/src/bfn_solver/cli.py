"""Console script ``bfn-solver``: sample, order-check, bench, train."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gen_common.cli import add_common_args, emit, format_table, run_cli

DESCRIPTION = """Bayesian flow networks as SDEs, and the fast BFN solvers (Xue et al., ICML 2024).

Subcommands:
  sample       draw samples with any method from a toy, a trained folder or an nnaisense checkpoint
  order-check  measure every method's convergence order on exact toys
  bench        quality vs NFE of every method, and the NFE each needs to match BFN at 1000 steps
  train        train a small BFN on offline data (2-D mixture, categorical toy, small images, text)

Model convention: BFN time t in [0, 1] (t = 1 at the data), passed as a tensor of shape (batch,).
"""

CONTINUOUS_CHOICES = (
    "bfn",
    "sde_euler",
    "solver1",
    "solver2",
    "solver++1",
    "solver++2",
    "sde_solver++1",
    "sde_solver++2",
)
DISCRETE_CHOICES = (
    "bfn",
    "sde_euler",
    "ode_euler",
    "solver1",
    "solver2",
    "solver2_multistep",
    "sde_solver1",
    "sde_solver2",
)


def _toy_threads(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The toy problems are tiny: on a CPU one intra-op thread is faster (threads only add overhead)."""
    from gen_common.device import num_threads, resolve_device

    return num_threads(1) if resolve_device(args.device).type == "cpu" else contextlib.nullcontext()


def _method_list(text: str | None, data: Sequence[str]) -> list[str] | None:
    """--methods "a,b" checked against the registries of ``data``: unknown names are an error, not a no-op."""
    if text is None:
        return None
    names = [m.strip() for m in text.split(",") if m.strip()]
    known = {
        *(CONTINUOUS_CHOICES if "continuous" in data else ()),
        *(DISCRETE_CHOICES if "discrete" in data else ()),
    }
    unknown = [m for m in names if m not in known]
    if unknown or not names:
        raise ValueError(
            f"unknown method(s) {', '.join(unknown) or '(none given)'} for --data {'/'.join(data)}; "
            f"continuous: {', '.join(CONTINUOUS_CHOICES)}; discrete: {', '.join(DISCRETE_CHOICES)}"
        )
    return names


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def _out_dir(args: argparse.Namespace, names: Sequence[str]) -> Path | None:
    """The output folder, refusing to replace files a previous run wrote unless --overwrite."""
    if args.out is None:
        return None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    clash = [n for n in names if (out / n).exists()]
    if clash and not args.overwrite:
        raise FileExistsError(
            f"{out} already holds {', '.join(clash)}; pass --overwrite or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


# ----------------------------------------------------------------------------------------------------- sample


def _load_model(args: argparse.Namespace, device: torch.device):
    """(model, kind, schedule, extra) for --model / --checkpoint."""
    from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
    from bfn_solver.toys import CategoricalJoint, ExactCategoricalModel, ExactMixtureModel, GaussianMixture

    if args.checkpoint:
        from bfn_solver.checkpoints import load_nnaisense_checkpoint

        if not args.kind:
            raise ValueError("--checkpoint needs --kind cifar10 or --kind text8")
        model = load_nnaisense_checkpoint(args.checkpoint, args.kind, device=device)
        kind = "continuous" if args.kind == "cifar10" else "discrete"
        return model, kind, model.schedule, {"source": str(args.checkpoint)}
    name = args.model
    if name == "toy-mixture":
        sch = ContinuousSchedule()
        mix = GaussianMixture.ring()
        return ExactMixtureModel(mix, sch), "continuous", sch, {"toy": mix}
    if name == "toy-categorical":
        joint = CategoricalJoint.random(4, 2, concentration=0.3, seed=0)
        sch = DiscreteSchedule(4, beta_1=3.0)
        return ExactCategoricalModel(joint), "discrete", sch, {"toy": joint}
    path = Path(name)
    if not path.is_dir():
        raise FileNotFoundError(
            f"--model {name!r} is neither toy-mixture, toy-categorical nor a folder written by `bfn-solver train`"
        )
    meta = (
        json.loads((path / "config.json").read_text(encoding="utf-8"))
        if (path / "config.json").is_file()
        else {}
    )
    from bfn_solver import checkpoints, toy_networks

    classes = {
        "ContinuousMLP": toy_networks.ContinuousMLP,
        "DiscreteMLP": toy_networks.DiscreteMLP,
        "BFNImageModel": checkpoints.BFNImageModel,
        "BFNTextModel": checkpoints.BFNTextModel,
    }
    cls = classes.get(meta.get("_class", ""))
    if cls is None:
        raise ValueError(f"{path}/config.json names no bfn-solver model class (found {meta.get('_class')!r})")
    model = cls.from_pretrained(path, device=device)
    kind = "continuous" if isinstance(model.schedule, ContinuousSchedule) else "discrete"
    extra: dict[str, Any] = {"source": str(path)}
    if (path / "tokenizer.json").is_file():
        from gen_common.text import CharTokenizer

        extra["tokenizer"] = CharTokenizer.load(path / "tokenizer.json")
    if (path / "training.json").is_file():
        # A model `train` fitted to an exact toy: judge its samples against the true distribution.
        data = json.loads((path / "training.json").read_text(encoding="utf-8")).get("data")
        if data in ("mixture2d", "categorical"):
            from bfn_solver.training import toy_source

            extra["toy"] = toy_source(data)[0]
    return model, kind, model.schedule, extra


def _sample_shape(args: argparse.Namespace, model: Any, kind: str) -> tuple[int, ...]:
    n = args.num_samples
    cfg = getattr(model, "config", None)
    if cfg is None:
        return (n, 2)  # the toys: 2-D mixture points or two categorical positions
    if hasattr(cfg, "image_size"):
        return (n, cfg.image_size, cfg.image_size, cfg.image_channels)
    if hasattr(cfg, "seq_len"):
        return (n, args.length or cfg.seq_len)
    if hasattr(cfg, "dim"):
        return (n, cfg.dim)
    return (n, cfg.length)


def _cmd_sample(args: argparse.Namespace) -> int:
    try:
        return _sample(args)
    except (
        FloatingPointError
    ) as exc:  # NaN/inf from the network (e.g. a corrupt checkpoint): the user's to fix
        raise ValueError(str(exc)) from exc


def _sample(args: argparse.Namespace) -> int:
    from bfn_solver.metrics import sliced_wasserstein, total_variation
    from bfn_solver.sampling import sample_continuous, sample_discrete
    from gen_common.checkpoint import save_state_dict
    from gen_common.device import resolve_device, resolve_dtype
    from gen_common.seeding import make_generator

    device = resolve_device(args.device)
    _positive("--num-samples", args.num_samples)
    _positive("--steps", args.steps)
    if args.length is not None:
        _positive("--length", args.length)
    out = _out_dir(args, ["samples.safetensors", "samples.png", "samples.txt"])
    model, kind, sch, extra = _load_model(args, device)
    mdtype = resolve_dtype(args.model_dtype, device) if args.model_dtype else None
    if mdtype is not None and isinstance(model, torch.nn.Module):
        model = model.to(mdtype)
    gen = make_generator(args.seed)
    shape = _sample_shape(args, model, kind)
    t0 = time.perf_counter()
    common = dict(
        spacing=args.spacing,
        final=args.final,
        device=device,
        model_dtype=mdtype,
        show_progress=None if not args.json else False,
    )
    if kind == "continuous":
        if args.method not in CONTINUOUS_CHOICES:
            raise ValueError(f"{args.method!r} is not a continuous method: {', '.join(CONTINUOUS_CHOICES)}")
        res = sample_continuous(
            model,
            shape,
            args.steps,
            args.method,
            gen,
            schedule=sch,
            eta=args.eta if args.eta is not None else 0.01,
            clip=None if args.no_clip else 1.0,
            **common,
        )
    else:
        if args.method not in DISCRETE_CHOICES:
            raise ValueError(f"{args.method!r} is not a discrete method: {', '.join(DISCRETE_CHOICES)}")
        res = sample_discrete(
            model,
            shape,
            sch.num_classes,
            args.steps,
            args.method,
            gen,
            schedule=sch,
            eta=args.eta if args.eta is not None else 1e-3,
            decode=args.decode,
            **common,
        )
    seconds = time.perf_counter() - t0
    result: dict[str, Any] = {
        "method": args.method,
        "steps": args.steps,
        "nfe": res.nfe,
        "shape": list(res.samples.shape),
        "seconds": seconds,
    }
    toy = extra.get("toy")
    if toy is not None and kind == "continuous":
        ref = toy.sample(shape[0], torch.Generator().manual_seed(args.seed + 1))
        result["sliced_wasserstein"] = sliced_wasserstein(res.samples.cpu().double(), ref)
    elif toy is not None:
        result["total_variation"] = total_variation(res.samples.cpu(), toy.probs)
    texts = None
    if kind == "discrete" and "tokenizer" in extra:
        texts = [extra["tokenizer"].decode(row.tolist()) for row in res.samples.cpu()]
    elif kind == "discrete" and getattr(getattr(model, "config", None), "vocab_size", None) == 27:
        from bfn_solver.checkpoints import decode_text8

        texts = decode_text8(res.samples.cpu())
    if texts is not None:
        result["text"] = texts[:4]
    if out is not None:
        save_state_dict({"samples": res.samples.detach().cpu().contiguous()}, out / "samples.safetensors")
        files = [str(out / "samples.safetensors")]
        if texts is not None:
            (out / "samples.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
            files.append(str(out / "samples.txt"))
        elif kind == "continuous":
            files.append(str(_plot_samples(res.samples.detach().cpu().float(), out / "samples.png")))
        result["files"] = files
    emit(result, as_json=args.json)
    return 0


def _plot_samples(x: torch.Tensor, path: Path) -> Path:
    from gen_common.plotting import new_figure, save_figure

    if x.ndim == 2:
        fig, ax = new_figure(1, 1, size=(4, 4))
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4)
        ax.set_aspect("equal")
        return save_figure(fig, path)
    n = min(16, x.shape[0])
    fig, axes = new_figure(2, (n + 1) // 2, size=(1.2 * ((n + 1) // 2), 2.6))
    for ax, img in zip(axes.flat, x[:n]):
        ax.imshow(((img + 1) / 2).clamp(0, 1).numpy())
        ax.axis("off")
    return save_figure(fig, path)


# ----------------------------------------------------------------------------------------------- order-check


def _cmd_order_check(args: argparse.Namespace) -> int:
    from bfn_solver.order import plot_orders, run_order_check

    data = ("continuous", "discrete") if args.data == "both" else (args.data,)
    methods = _method_list(args.methods, data)
    out = _out_dir(args, ["order_check.json", "order_check.png"])
    results = run_order_check(
        data=data, methods=methods, quick=args.quick, spacing=args.spacing, seed=args.seed
    )
    orders = {r.key: None if r.order is None else round(r.order, 3) for r in results}
    if out is not None:
        details = [
            {
                "method": r.key,
                "expected": r.expected,
                "order": r.order,
                "error": r.error_kind,
                "steps": r.steps,
                "nfe": r.nfe,
                "errors": r.errors,
                **r.notes,
            }
            for r in results
        ]
        (out / "order_check.json").write_text(
            json.dumps({"orders": orders, "details": details}, indent=2) + "\n", encoding="utf-8"
        )
        plot_orders(results, out / "order_check.png")

    def human(_: Any) -> str:
        rows = [
            [r.key, r.expected, f"{r.order:.2f}", r.error_kind, " ".join(f"{e:.1e}" for e in r.errors)]
            for r in results
        ]
        return format_table(["method", "expected", "measured", "error", "errors (by steps)"], rows)

    emit(orders, as_json=args.json, human=human)
    return 0


# ---------------------------------------------------------------------------------------------------- bench


def _cmd_bench(args: argparse.Namespace) -> int:
    from bfn_solver.bench import plot_curves, run_exact_gaussian_bench, run_quality_bench
    from gen_common.device import resolve_device

    device = resolve_device(args.device)
    data = ("continuous", "discrete") if args.data == "both" else (args.data,)
    methods = _method_list(args.methods, data)
    try:
        nfes = sorted({_positive("--nfes entries", int(v)) for v in args.nfes.split(",") if v.strip()})
    except ValueError as exc:
        raise ValueError(f"--nfes must be comma-separated positive integers, e.g. 5,10,20 ({exc})") from exc
    if not nfes:
        raise ValueError("--nfes is empty; e.g. --nfes 5,10,20")
    _positive("--num-samples", args.num_samples)
    _positive("--reference-steps", args.reference_steps)
    out = _out_dir(args, ["bench.json", "bench.png"])

    def chosen(d: str) -> list[str] | None:
        if methods is None:
            return None
        return [m for m in methods if m in (CONTINUOUS_CHOICES if d == "continuous" else DISCRETE_CHOICES)]

    with _toy_threads(args):
        curves = [
            run_quality_bench(
                d,
                methods=chosen(d),
                nfes=nfes,
                reference_steps=args.reference_steps,
                n_samples=args.num_samples,
                seed=args.seed,
                device=device,
                show_progress=None if not args.json else False,
            )
            for d in data
            if chosen(d) != []  # --methods named no method of this data type: skip it
        ]
        if "continuous" in data and chosen("continuous") != []:
            # The same comparison without a Monte Carlo floor: exact output moments on a 1-D Gaussian.
            exact = run_exact_gaussian_bench(
                methods=chosen("continuous"), nfes=nfes, reference_steps=args.reference_steps
            )
            curves.insert(1, exact)
    result: dict[str, Any] = {}
    for c in curves:
        result[c.data] = {
            "metric": c.metric,
            "monte_carlo_floor": c.floor,  # 0 for the exact bench
            "monte_carlo_floor_std": c.floor_std,
            "match_tolerance": c.tolerance,
            f"bfn_at_{c.reference_steps}_steps": c.reference_quality,
            "curves": {m: [[n, q] for n, q in pts] for m, pts in c.curves.items()},
            "nfe_to_match_bfn": c.nfe_to_match,
            "speedup_vs_bfn": c.speedups(),
            "seconds": c.seconds,
        }
    if out is not None:
        (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        plot_curves(curves, out / "bench.png")
        result["files"] = [str(out / "bench.json"), str(out / "bench.png")]

    def human(_: Any) -> str:
        parts = []
        for c in curves:
            cols, rows = c.table()
            parts.append(
                f"{c.data}: {c.metric}; bfn @ {c.reference_steps} steps = {c.reference_quality:.4g}"
                + (f", Monte Carlo floor = {c.floor:.4g}" if c.floor > 0 else " (exact, no Monte Carlo)")
                + "\n"
                + format_table(cols, rows)
            )
        return "\n\n".join(parts)

    emit(result, as_json=args.json, human=human)
    return 0


# ---------------------------------------------------------------------------------------------------- train


def _cmd_train(args: argparse.Namespace) -> int:
    from bfn_solver.checkpoints import BFNImageConfig, BFNImageModel, BFNTextConfig, BFNTextModel
    from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
    from bfn_solver.toy_networks import ContinuousMLP, ContinuousMLPConfig, DiscreteMLP, DiscreteMLPConfig
    from bfn_solver.training import shapes_dataset, text_dataset, toy_source, train_bfn
    from gen_common.atomic import atomic_write_json
    from gen_common.pretrained import prepare_output_dir
    from gen_common.training import TrainConfig

    if args.out is None:
        raise ValueError("train needs --out DIR (checkpoints and the final model are written there)")
    out = Path(args.out)
    final_dir = out / "model"
    if (final_dir / "config.json").exists() and not args.overwrite:
        raise FileExistsError(
            f"{final_dir} already holds a trained model; pass --overwrite or choose another --out"
        )
    torch.manual_seed(
        args.seed
    )  # parameter initialisation only; the loop's randomness is seeded by TrainConfig
    tokenizer = None
    if args.data == "mixture2d":
        model = ContinuousMLP(ContinuousMLPConfig(dim=2, hidden=args.hidden))
        _, data = toy_source("mixture2d")
    elif args.data == "categorical":
        model = DiscreteMLP(DiscreteMLPConfig(length=2, num_classes=4, hidden=args.hidden))
        _, data = toy_source("categorical")
    elif args.data == "shapes":
        model = BFNImageModel(
            BFNImageConfig(
                embedding_dim=args.hidden, n_blocks=2, norm_groups=8, image_size=8, dropout_prob=0.0
            )
        )
        data = shapes_dataset(4096, 8, args.seed)
    elif args.data == "text":
        data, tokenizer = text_dataset(args.length or 32)
        model = BFNTextModel(
            BFNTextConfig(
                vocab_size=tokenizer.vocab_size,
                seq_len=data.shape[1],
                n_layer=2,
                n_head=4,
                n_embd=args.hidden,
                beta_1=3.0,
            )
        )
    else:
        raise ValueError(f"unknown --data {args.data!r}")
    cfg = TrainConfig(
        steps=args.steps,
        lr=args.lr,
        warmup_steps=min(100, args.steps // 10),
        schedule="cosine",
        min_lr_ratio=0.1,
        ema_decay=args.ema,
        log_every=max(1, args.steps // 20),
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    sch = model.schedule
    assert isinstance(sch, ContinuousSchedule | DiscreteSchedule)
    t0 = time.perf_counter()
    res = train_bfn(
        model,
        data,
        sch,
        cfg,
        batch_size=args.batch_size,
        out_dir=out / "checkpoints",
        device=args.device,
        show_progress=None if not args.json else False,
    )
    prepare_output_dir(final_dir, overwrite=True)
    model.cpu().save_pretrained(final_dir, overwrite=True)
    if tokenizer is not None:
        tokenizer.save(final_dir / "tokenizer.json")
    atomic_write_json(final_dir / "training.json", {"data": args.data, "steps": res.steps})
    result = {
        "data": args.data,
        "steps": res.steps,
        "final_loss": res.final_loss,
        "resumed_from": res.resumed_from,
        "seconds": time.perf_counter() - t0,
        "model": str(final_dir),
        "history": res.history[-5:],
    }
    emit(result, as_json=args.json)
    return 0


# ------------------------------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bfn-solver", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "sample", help="draw samples with any method", description="Draw samples with any method."
    )
    p.add_argument(
        "--model",
        default="toy-mixture",
        help="toy-mixture, toy-categorical, or a folder written by `bfn-solver train` (default: %(default)s)",
    )
    p.add_argument(
        "--checkpoint",
        help="an nnaisense checkpoint file (cifar10_256c_ema.pt or text8_ema.pt), read with weights_only=True",
    )
    p.add_argument("--kind", choices=["cifar10", "text8"], help="which nnaisense network --checkpoint holds")
    p.add_argument(
        "--method",
        default="solver++2",
        help=f"continuous: {', '.join(CONTINUOUS_CHOICES)}; discrete: {', '.join(DISCRETE_CHOICES)}",
    )
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument(
        "--length", type=int, default=None, help="sequence length for text models (default: the model's)"
    )
    p.add_argument(
        "--eta",
        type=float,
        default=None,
        help="start time of the solvers (default 0.01 continuous, 1e-3 discrete)",
    )
    p.add_argument("--spacing", choices=["time", "logsnr"], default="time")
    p.add_argument("--final", choices=["prediction", "denoise", "state"], default=None)
    p.add_argument("--decode", choices=["mode", "sample"], default="mode")
    p.add_argument("--no-clip", action="store_true", help="do not clip x̂ to [-1, 1] (continuous)")
    p.add_argument(
        "--model-dtype",
        default=None,
        help="network dtype: fp32, bf16, fp16 (state and coefficients stay fp32/fp64)",
    )
    p.add_argument("--overwrite", action="store_true")
    add_common_args(p)
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser(
        "order-check",
        help="measure convergence orders on exact toys",
        description='Measure each method\'s empirical convergence order on exact toys; --json prints {"<data>/<method>": order}.',
    )
    p.add_argument("--data", choices=["both", "continuous", "discrete"], default="both")
    p.add_argument("--methods", default=None, help="comma-separated subset")
    p.add_argument(
        "--quick", action="store_true", help="smaller batches and step ranges (seconds instead of a minute)"
    )
    p.add_argument(
        "--spacing",
        choices=["time", "logsnr"],
        default="logsnr",
        help="grid of the continuous solvers (default: %(default)s)",
    )
    p.add_argument("--overwrite", action="store_true")
    add_common_args(p)
    p.set_defaults(func=_cmd_order_check)

    p = sub.add_parser(
        "bench",
        help="quality vs NFE of every method",
        description="Quality vs NFE of every method on exact toys, and the NFE each needs to match the original BFN sampler at --reference-steps.",
    )
    p.add_argument("--data", choices=["both", "continuous", "discrete"], default="both")
    p.add_argument("--methods", default=None, help="comma-separated subset")
    p.add_argument("--nfes", default="5,10,20,50,100,200,500", help="NFE budgets (default: %(default)s)")
    p.add_argument("--reference-steps", type=int, default=1000)
    p.add_argument("--num-samples", type=int, default=10000)
    p.add_argument("--overwrite", action="store_true")
    add_common_args(p)
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser(
        "train",
        help="train a small BFN offline",
        description="Train a small BFN with the continuous-time loss (resumes from --out).",
    )
    p.add_argument("--data", choices=["mixture2d", "categorical", "shapes", "text"], default="mixture2d")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--length", type=int, default=None, help="text window length (default 32)")
    p.add_argument("--ema", type=float, default=None, help="EMA decay (default: none)")
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    add_common_args(p)
    p.set_defaults(func=_cmd_train)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv, prog="bfn-solver")


if __name__ == "__main__":
    raise SystemExit(main())
