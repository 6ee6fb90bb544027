"""Console script ``icl-dynamics``: theory, train, sweep, plot and bench subcommands."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gen_common.cli import add_common_args, emit, format_table, run_cli

DESCRIPTION = """\
Mesa-optimization in autoregressively trained one-layer linear transformers (Zheng et al., NeurIPS 2024).
Simulate full-batch gradient descent of a linear causal self-attention model on AR sequences x_{t+1} = W x_t
(W unitary diagonal) and compare the trained parameters with the closed-form fixed point
ab* = (T-2)m4 / [(T-2)m6 + (d-1)m24 H_{T-2}].

examples:
  icl-dynamics theory --x1 gaussian --sigma 1 --d 5 --T 100 --json
  icl-dynamics train --x1 gaussian --sigma 1 --d 3 --T 20 --m 1000 --json
  icl-dynamics sweep --out runs/sweep --m 2000 --T 50     (the Appendix-B grid, resumable)
  icl-dynamics plot --runs runs/sweep --out runs/figures
  icl-dynamics bench --epochs 200                          (the paper's setting vs the O(T^2) baseline)
"""


def _add_x1_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("x1 distribution")
    g.add_argument(
        "--x1",
        default="gaussian",
        choices=["gaussian", "sparse", "ones", "custom"],
        help="family of the first token (default: %(default)s)",
    )
    g.add_argument(
        "--sigma", type=float, default=None, help="standard deviation of the gaussian family (default 1)"
    )
    g.add_argument(
        "--c", type=float, default=None, help="magnitude of the sparse family's non-zero entry (default 1)"
    )
    g.add_argument(
        "--sampler",
        default=None,
        metavar="MODULE:FUNC",
        help="custom family: a function (n, d, generator) -> (n, d) tensor",
    )
    g.add_argument("--d", type=int, default=5, help="dimension d (default: %(default)s)")
    g.add_argument("--T", type=int, default=100, help="sequence length T (default: %(default)s)")


def _dist(args: argparse.Namespace):
    from icl_dynamics.data import X1Dist

    if args.x1 == "gaussian":
        return X1Dist.gaussian(1.0 if args.sigma is None else args.sigma)
    if args.x1 == "sparse":
        return X1Dist.sparse(1.0 if args.c is None else args.c)
    if args.x1 == "ones":
        return X1Dist.ones()
    if not args.sampler or ":" not in args.sampler:
        raise ValueError(
            "--x1 custom needs --sampler MODULE:FUNC (a function (n, d, generator) -> (n, d) tensor)"
        )
    module, _, func = args.sampler.partition(":")
    try:
        fn = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import sampler {args.sampler!r}: {exc}") from exc
    return X1Dist.custom(fn, name=args.sampler)


def _check_sizes(args: argparse.Namespace) -> None:
    if args.d < 1:
        raise ValueError(f"--d must be >= 1, got {args.d}")
    if args.T < 3:
        raise ValueError(f"--T must be >= 3, got {args.T}")
    if getattr(args, "m", 1) < 1:
        raise ValueError(f"--m must be >= 1, got {args.m}")
    if getattr(args, "m_test", 0) < 0:
        raise ValueError(f"--m-test must be >= 0, got {args.m_test}")


def _device(name: str):
    """`resolve_device`, with an unavailable device reported as a user error (one line, exit 2)."""
    from gen_common.device import resolve_device

    try:
        return resolve_device(name)
    except RuntimeError as exc:
        raise ValueError(str(exc)) from exc


# Below this many prefix-Gram entries per epoch (m·T·(2d)²) one CPU thread is faster: the matrices are too
# small for threads to pay for their synchronisation, and on a busy machine several threads thrash (measured:
# the issue's `train --d 3 --T 20 --m 1000` took 9.7 s on one thread, 35.6 s on two, load ~6 on 2 cores).
SMALL_WORK = 20_000_000


def _threads(args: argparse.Namespace, m: int, T: int, d: int, device) -> int | None:
    """``--threads`` (0: one thread for small problems on the CPU, torch's default otherwise)."""
    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {args.threads}")
    if args.threads > 0:
        return args.threads
    return 1 if device.type == "cpu" and m * T * (2 * d) ** 2 < SMALL_WORK else None


def _add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (default 0: one thread for small problems, torch's default for large ones)",
    )


def _human_kv(title: str, result: Mapping[str, Any], keys: Sequence[str]) -> str:
    rows = [[k, result[k]] for k in keys if k in result and result[k] is not None]
    return title + "\n" + format_table(["quantity", "value"], rows, floatfmt=".6g")


def cmd_theory(args: argparse.Namespace) -> int:
    from gen_common.seeding import make_generator
    from icl_dynamics.theory import moments, predict_theory

    _check_sizes(args)
    dist = _dist(args)
    mom = moments(dist, args.d, n_mc=args.mc_samples, generator=make_generator(args.seed))
    pred = predict_theory(mom, args.d, args.T)
    out = {"x1": dist.label, **pred.as_dict()}
    emit(
        out,
        as_json=args.json,
        human=lambda r: _human_kv(
            f"theory for {dist.label}, d={args.d}, T={args.T} (moments: {mom.source})",
            r,
            [
                "predicted_ab",
                "predicted_ab_limit",
                "predicted_ratio",
                "predicted_ratio_limit",
                "predicted_mse_last",
                "predicted_loss",
                "recovery_gap",
                "recovers",
                "assumption_holds",
            ],
        ),
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from gen_common.atomic import atomic_write_json
    from gen_common.device import num_threads
    from gen_common.pretrained import prepare_output_dir
    from gen_common.seeding import make_generator
    from icl_dynamics.data import generate_sequences
    from icl_dynamics.model import LinearSelfAttention, LSAConfig
    from icl_dynamics.plots import plot_records
    from icl_dynamics.sweep import RunSpec
    from icl_dynamics.theory import empirical_moments, moments, predict_theory
    from icl_dynamics.train import TrainConfig, train

    _check_sizes(args)
    if args.out and not args.overwrite:
        # Refuse before training, not after: the run writes model/, history.json and PNGs into --out.
        taken = [p for p in (Path(args.out) / "model", Path(args.out) / "history.json") if p.exists()]
        if taken:
            raise FileExistsError(
                f"{args.out} already holds a run ({taken[0].name}); pass --overwrite or choose another --out"
            )
    out_dir = prepare_output_dir(args.out, overwrite=args.overwrite) if args.out else None
    device = _device(args.device)
    dist = _dist(args)
    gen = make_generator(args.seed)
    x = generate_sequences(
        args.m, args.T, args.d, dist, generator=gen, dtype=args.dtype, device=device, balanced=args.balanced
    )
    x_test = (
        generate_sequences(args.m_test, args.T, args.d, dist, generator=gen, dtype=args.dtype, device=device)
        if args.m_test > 0
        else None
    )
    model = LinearSelfAttention(LSAConfig(args.d, args.a0, args.b0, args.dtype)).to(device)
    cfg = TrainConfig(
        lr=args.lr,
        max_epochs=args.max_epochs,
        tol=args.tol,
        grad_mask=args.grad_mask,
        eval_every=1 if x_test is not None else 0,
    )
    with num_threads(_threads(args, args.m, args.T, args.d, device)):
        result = train(model, x, config=cfg, x_test=x_test, show_progress=False if args.json else None)
    theory = predict_theory(moments(dist, args.d, generator=make_generator(args.seed)), args.d, args.T)
    out: dict[str, Any] = {"x1": dist.label, "d": args.d, "T": args.T, "m": args.m, **result.summary()}
    out["predicted_ab"] = theory.predicted_ab
    # The closed form at the training sample's own moments: what finite-m sampling noise moves ab* to.
    out["predicted_ab_sample"] = predict_theory(empirical_moments(x[:, 0]), args.d, args.T).predicted_ab
    out["predicted_ab_limit"] = theory.predicted_ab_limit
    out["rel_error_ab"] = out["ab"] / theory.predicted_ab - 1
    out["predicted_ratio"] = theory.predicted_ratio
    out["predicted_mse_last"] = theory.predicted_mse_last
    out["assumption_holds"] = theory.assumption_holds
    out["device"] = str(device)
    if out_dir is not None:
        model.save_pretrained(out_dir / "model", overwrite=args.overwrite)
        h = result.history
        record = {
            "run_id": "train",
            "spec": asdict(
                RunSpec(
                    dist.family,
                    dist.scale,
                    args.a0,
                    args.b0,
                    args.d,
                    args.T,
                    args.m,
                    args.m_test,
                    args.lr,
                    args.max_epochs,
                    args.grad_mask,
                    args.dtype,
                    args.seed,
                )
            ),
            "theory": theory.as_dict(),
            "summary": out,
            "history": h,
            "final": {
                k: {"real": p.detach().cpu().real.tolist(), "imag": p.detach().cpu().imag.tolist()}
                for k, p in (("wkq", model.wkq), ("wpv", model.wpv))
            },
        }
        atomic_write_json(out_dir / "history.json", record)
        out["figures"] = [str(p) for p in plot_records([record], out_dir)]
        out["out"] = str(out_dir)
    emit(
        out,
        as_json=args.json,
        human=lambda r: _human_kv(
            f"full-batch GD on {dist.label}, d={args.d}, T={args.T}, m={args.m}",
            r,
            [
                "ab",
                "predicted_ab",
                "rel_error_ab",
                "final_loss",
                "max_offdiag",
                "ratio_last",
                "predicted_ratio",
                "mse_last",
                "predicted_mse_last",
                "lr",
                "epochs",
                "converged",
                "seconds",
                "out",
            ],
        ),
    )
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from gen_common.device import num_threads
    from icl_dynamics.sweep import paper_grid, run_sweep

    out = Path(args.out)
    if args.overwrite and (out / "runs").is_dir():
        for p in (out / "runs").glob("*.json"):
            p.unlink()
    specs = paper_grid(
        families=args.families,
        lr_mode=args.lr_mode,
        d=args.d,
        T=args.T,
        m=args.m,
        m_test=args.m_test,
        epochs=args.epochs,
        dtype=args.dtype,
        seed=args.seed,
        masked=args.masked,
    )
    skipped = []
    device = _device(args.device)
    with num_threads(_threads(args, args.m, args.T, args.d, device)):
        rows = run_sweep(
            specs,
            out,
            device=device,
            show_progress=False if args.json else None,
            on_run=lambda r, s: skipped.append(s),
        )
    result = {"out": str(out), "runs": len(rows), "resumed": int(sum(skipped)), "rows": rows}
    emit(
        result,
        as_json=args.json,
        human=lambda r: (
            format_table(
                ["run", "ab", "predicted", "rel.err", "loss", "ratio", "mse_last", "offdiag"],
                [
                    [
                        w["run_id"],
                        w["ab"],
                        w["predicted_ab"],
                        w["rel_error_ab"],
                        w["final_loss"],
                        w["ratio_last"],
                        w["mse_last"],
                        w["max_offdiag"],
                    ]
                    for w in r["rows"]
                ],
            )
            + f"\n{r['runs']} runs ({r['resumed']} resumed) in {r['out']}"
        ),
    )
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from icl_dynamics.plots import plot_records
    from icl_dynamics.sweep import load_runs

    records = load_runs(args.runs)
    out = Path(args.out) if args.out else Path(args.runs) / "figures"
    existing = [p for p in out.glob("*.png")] if out.is_dir() else []
    if existing and not args.overwrite:
        raise FileExistsError(f"{out} already holds figures; pass --overwrite or choose another --out")
    paths = plot_records(records, out)
    emit({"figures": [str(p) for p in paths], "runs": len(records)}, as_json=args.json)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from icl_dynamics.bench import run_benchmark

    _check_sizes(args)
    result = run_benchmark(
        d=args.d,
        T=args.T,
        m=args.m,
        epochs=args.epochs,
        baseline_epochs=args.baseline_epochs,
        dtype=args.dtype,
        device=_device(args.device),
        threads=args.threads,
        seed=args.seed,
    )
    emit(result, as_json=args.json, human=lambda r: r["report"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="icl-dynamics", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "theory", help="closed-form predictions: moments, ab*, its T→∞ limit, ratio, MSE, recovery"
    )
    _add_x1_args(p)
    p.add_argument(
        "--mc-samples", type=int, default=200_000, help="Monte Carlo draws for a custom sampler's moments"
    )
    add_common_args(p)
    p.set_defaults(func=cmd_theory)

    p = sub.add_parser("train", help="full-batch GD until converged; compare ab with the closed form")
    _add_x1_args(p)
    p.set_defaults(d=3, T=20)
    p.add_argument("--m", type=int, default=1000, help="training sequences (default: %(default)s)")
    p.add_argument(
        "--m-test", type=int, default=2000, help="test sequences for ratio/MSE at the last position (0: none)"
    )
    p.add_argument(
        "--a0", type=float, default=0.5, help="initial a (W^KQ[d:, :d] = a0 I), default %(default)s"
    )
    p.add_argument(
        "--b0", type=float, default=1.5, help="initial b (W^PV[:, :d] = b0 I), default %(default)s"
    )
    p.add_argument(
        "--lr", type=float, default=None, help="learning rate (default: the stable rate from the theory)"
    )
    p.add_argument("--max-epochs", type=int, default=3000, help="epoch cap (default: %(default)s)")
    p.add_argument(
        "--tol",
        type=float,
        default=1e-5,
        help="stop when |Δab| <= tol·|ab| for 5 epochs (default: %(default)s)",
    )
    p.add_argument(
        "--grad-mask",
        default="none",
        choices=["none", "offdiag", "diagonal"],
        help="mask gradients (paper's masked experiment: offdiag)",
    )
    p.add_argument(
        "--dtype", default="complex64", choices=["complex64", "complex128"], help="parameter/data precision"
    )
    p.add_argument(
        "--balanced",
        action="store_true",
        help="variance-reduced training data (Gauss-Hermite x1 with the Gaussian's moments; balanced sparse)",
    )
    p.add_argument("--overwrite", action="store_true", help="allow writing into an existing --out folder")
    _add_threads_arg(p)
    add_common_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sweep", help="the Appendix-B grid (families × scales × inits), resumable per run")
    p.add_argument(
        "--families",
        nargs="+",
        default=["gaussian", "sparse", "ones"],
        choices=["gaussian", "sparse", "ones"],
    )
    p.add_argument(
        "--lr-mode",
        default="paper",
        choices=["paper", "auto"],
        help="paper: Appendix-B rates and epochs; auto: stable rate until converged",
    )
    p.add_argument("--d", type=int, default=5)
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--m", type=int, default=10_000)
    p.add_argument("--m-test", type=int, default=10_000)
    p.add_argument(
        "--epochs", type=int, default=None, help="override the epochs (paper mode) or the cap (auto mode)"
    )
    p.add_argument("--dtype", default="complex64", choices=["complex64", "complex128"])
    p.add_argument(
        "--masked",
        action="store_true",
        help="also run all-ones x1 with masked off-diagonal gradients (paper's RQ3)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="delete existing run files in --out and start over"
    )
    _add_threads_arg(p)
    add_common_args(p, out_default="runs/icl-sweep", seed_default=1)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "plot", help="PNG figures (ab dynamics, ratio/MSE, all-ones heatmaps) from a sweep folder"
    )
    p.add_argument("--runs", required=True, help="the sweep's --out folder")
    p.add_argument("--overwrite", action="store_true")
    add_common_args(p)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("bench", help="time the O(T) cumulative-sum training against the direct O(T^2) one")
    p.add_argument("--d", type=int, default=5)
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--m", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=200, help="epochs timed for the O(T) implementation")
    p.add_argument(
        "--baseline-epochs",
        type=int,
        default=10,
        help="epochs timed for the O(T^2) baselines (extrapolated per epoch)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--dtype", default="complex64", choices=["complex64", "complex128"])
    add_common_args(p)
    p.set_defaults(func=cmd_bench)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv, prog="icl-dynamics")
