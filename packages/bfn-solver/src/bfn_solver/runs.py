"""What each `bfn-solver` command does, as library functions: one frozen config and one function per command.

The CLI (`bfn_solver.cli`), the tour's demo and a notebook all call these::

    from bfn_solver.runs import SampleRun, sample
    report = sample(SampleRun(model="toy-mixture", method="solver++2", steps=10))

Files are written only through ``ctx.output(name)`` (the output-folder policy of `gen_common.cli.RunContext`).
torch is imported inside the functions so that ``bfn-solver --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gen_common.cli import RunContext, arg
from gen_common.config import TrainConfig

if TYPE_CHECKING:
    import torch

    from bfn_solver.bench import BenchCurves
    from bfn_solver.order import OrderResult

__all__ = [
    "CONTINUOUS_CHOICES",
    "DISCRETE_CHOICES",
    "BenchReport",
    "BenchRun",
    "OrderCheckReport",
    "OrderCheckRun",
    "SampleReport",
    "SampleRun",
    "TrainReport",
    "TrainRun",
    "bench",
    "find_model_dir",
    "order_check",
    "sample",
    "train",
]

# The method names (kept here, not imported from `sampling`, so that --help does not import torch).
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
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "training.json")


def _cpu_threads(ctx: RunContext) -> contextlib.AbstractContextManager:
    """The toy problems are tiny: on a CPU one intra-op thread is faster (threads only add overhead)."""
    from gen_common.device import num_threads

    return num_threads(1) if ctx.torch_device().type == "cpu" else contextlib.nullcontext()


def _data_types(data: str) -> tuple[str, ...]:
    return ("continuous", "discrete") if data == "both" else (data,)


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


# ----------------------------------------------------------------------------------------------------- sample


@dataclass(frozen=True)
class SampleRun:
    """Draw samples with any method from a toy, a trained folder or an nnaisense checkpoint."""

    model: str = arg(
        "toy-mixture",
        help="toy-mixture, toy-categorical, or the folder `bfn-solver train --out` wrote (or its model/ folder)",
    )
    checkpoint: Path | None = arg(
        None,
        help="an nnaisense checkpoint (cifar10_256c_ema.pt or text8_ema.pt), read with weights_only=True",
    )
    kind: Literal["cifar10", "text8"] | None = arg(None, help="which nnaisense network --checkpoint holds")
    method: str = arg(
        "solver++2",
        help=f"continuous: {', '.join(CONTINUOUS_CHOICES)}; discrete: {', '.join(DISCRETE_CHOICES)}",
    )
    steps: int = arg(20, help="sampling steps", min=1)
    num_samples: int = arg(1000, help="samples to draw", min=1)
    length: int | None = arg(None, help="sequence length for text models (default: the model's)", min=1)
    eta: float | None = arg(
        None, help="start time of the solvers (default 0.01 continuous, 1e-3 discrete)", gt=0, lt=1
    )
    spacing: Literal["time", "logsnr"] = arg("time", help="time grid")
    final: Literal["prediction", "denoise", "state"] | None = arg(None, help="how the last step ends")
    decode: Literal["mode", "sample"] = arg("mode", help="discrete: final class choice")
    clip: bool = arg(True, help="clip x̂ to [-1, 1] (continuous)")
    model_dtype: str | None = arg(
        None, help="network dtype: fp32, bf16, fp16 (state and coefficients stay fp32/fp64)"
    )


@dataclass
class SampleReport:
    method: str
    steps: int
    nfe: int
    shape: list[int]
    seconds: float
    sliced_wasserstein: float | None = None  # a toy (or a model trained on one) is judged against its truth
    total_variation: float | None = None
    text: list[str] | None = None
    files: list[str] = dataclasses.field(default_factory=list)


def find_model_dir(path: str | Path) -> Path:
    """The model folder of ``path``: itself when it holds config.json, else the ``model/`` folder `train` writes."""
    p = Path(path).expanduser()
    if (p / "config.json").is_file():
        return p
    if (p / "model" / "config.json").is_file():
        return p / "model"
    if (p / "checkpoints").is_dir():
        raise FileNotFoundError(
            f"{p} holds training checkpoints but no finished model ({p / 'model'} is missing); "
            "rerun the same `bfn-solver train --out` to resume and finish it"
        )
    raise FileNotFoundError(
        f"--model {str(path)!r} is neither toy-mixture, toy-categorical nor a folder written by "
        "`bfn-solver train` (no config.json in it or in its model/ folder)"
    )


def _load_model(run: SampleRun, device: torch.device) -> tuple[Any, str, Any, dict[str, Any]]:
    """(model, kind, schedule, extra) for --model / --checkpoint."""
    from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
    from bfn_solver.toy import CategoricalJoint, ExactCategoricalModel, ExactMixtureModel, GaussianMixture

    if run.checkpoint:
        from bfn_solver.checkpoints import load_nnaisense_checkpoint

        if not run.kind:
            raise ValueError("--checkpoint needs --kind cifar10 or --kind text8")
        model = load_nnaisense_checkpoint(run.checkpoint, run.kind, device=device)
        kind = "continuous" if run.kind == "cifar10" else "discrete"
        return model, kind, model.schedule, {"source": str(run.checkpoint)}
    if run.model == "toy-mixture":
        sch = ContinuousSchedule()
        mix = GaussianMixture.ring()
        return ExactMixtureModel(mix, sch), "continuous", sch, {"toy": mix}
    if run.model == "toy-categorical":
        joint = CategoricalJoint.random(4, 2, concentration=0.3, seed=0)
        sch = DiscreteSchedule(4, beta_1=3.0)
        return ExactCategoricalModel(joint), "discrete", sch, {"toy": joint}
    path = find_model_dir(run.model)
    from bfn_solver import checkpoints, toy
    from gen_common.config import read_json

    meta = read_json(path / "config.json")
    classes = {
        "ContinuousMLP": toy.ContinuousMLP,
        "DiscreteMLP": toy.DiscreteMLP,
        "BFNImageModel": checkpoints.BFNImageModel,
        "BFNTextModel": checkpoints.BFNTextModel,
    }
    cls = classes.get(meta.get("_class", ""))
    if cls is None:
        raise ValueError(
            f"{path / 'config.json'} names no bfn-solver model class (found {meta.get('_class')!r}); "
            f"expected one of {', '.join(classes)}"
        )
    model = cls.from_pretrained(path, device=device)
    kind = "continuous" if isinstance(model.schedule, ContinuousSchedule) else "discrete"
    extra: dict[str, Any] = {"source": str(path)}
    if (path / "tokenizer.json").is_file():
        from gen_common.text import CharTokenizer

        extra["tokenizer"] = CharTokenizer.load(path / "tokenizer.json")
    if (path / "training.json").is_file():
        # A model `train` fitted to an exact toy: judge its samples against the true distribution.
        data = read_json(path / "training.json").get("data")
        if data in ("mixture2d", "categorical"):
            from bfn_solver.training import toy_source

            extra["toy"] = toy_source(data)[0]
    return model, kind, model.schedule, extra


def _sample_shape(run: SampleRun, model: Any) -> tuple[int, ...]:
    n = run.num_samples
    cfg = getattr(model, "config", None)
    if cfg is None:
        return (n, 2)  # the toys: 2-D mixture points or two categorical positions
    if hasattr(cfg, "image_size"):
        return (n, cfg.image_size, cfg.image_size, cfg.image_channels)
    if hasattr(cfg, "seq_len"):
        return (n, run.length or cfg.seq_len)
    if hasattr(cfg, "dim"):
        return (n, cfg.dim)
    return (n, cfg.length)


def sample(run: SampleRun, ctx: RunContext | None = None) -> SampleReport:
    """Sample with ``run.method`` (`sample_continuous` / `sample_discrete`); writes samples.safetensors and a PNG
    (continuous) or samples.txt (text) when ``ctx.out`` is set."""
    ctx = RunContext.of(ctx)
    try:
        return _sample(run, ctx)
    except (
        FloatingPointError
    ) as exc:  # NaN/inf from the network (e.g. a corrupt checkpoint): the user's to fix
        raise ValueError(str(exc)) from exc


def _sample(run: SampleRun, ctx: RunContext) -> SampleReport:
    import torch

    from bfn_solver.metrics import sliced_wasserstein, total_variation
    from bfn_solver.sampling import sample_continuous, sample_discrete
    from gen_common.checkpoint import save_state_dict
    from gen_common.device import resolve_dtype

    device = ctx.torch_device()
    model, kind, sch, extra = _load_model(run, device)
    choices = CONTINUOUS_CHOICES if kind == "continuous" else DISCRETE_CHOICES
    if run.method not in choices:
        raise ValueError(f"{run.method!r} is not a {kind} method: {', '.join(choices)}")
    mdtype = resolve_dtype(run.model_dtype, device) if run.model_dtype else None
    if mdtype is not None and isinstance(model, torch.nn.Module):
        model = model.to(mdtype)
    gen = ctx.generator()
    shape = _sample_shape(run, model)
    common: dict[str, Any] = dict(
        spacing=run.spacing, final=run.final, device=device, model_dtype=mdtype, progress=ctx.progress
    )
    t0 = time.perf_counter()
    if kind == "continuous":
        eta = run.eta if run.eta is not None else 0.01
        clip = 1.0 if run.clip else None
        res = sample_continuous(
            model, shape, run.steps, run.method, gen, schedule=sch, eta=eta, clip=clip, **common
        )
    else:
        eta = run.eta if run.eta is not None else 1e-3
        res = sample_discrete(
            model, shape, sch.num_classes, run.steps, run.method, gen, schedule=sch, eta=eta, decode=run.decode,
            **common,
        )  # fmt: skip
    samples = res.samples.detach().cpu()
    report = SampleReport(run.method, run.steps, res.nfe, list(samples.shape), time.perf_counter() - t0)
    toy = extra.get("toy")
    if toy is not None and kind == "continuous":
        ref = toy.sample(shape[0], torch.Generator().manual_seed(ctx.seed + 1))
        report.sliced_wasserstein = sliced_wasserstein(samples.double(), ref)
    elif toy is not None:
        report.total_variation = total_variation(samples, toy.probs)
    texts = None
    if kind == "discrete" and "tokenizer" in extra:
        texts = [extra["tokenizer"].decode(row.tolist()) for row in samples]
    elif kind == "discrete" and getattr(getattr(model, "config", None), "vocab_size", None) == 27:
        from bfn_solver.checkpoints import decode_text8

        texts = decode_text8(samples)
    if texts is not None:
        report.text = texts[:4]
    if ctx.out is not None:
        from gen_common.atomic import atomic_write_text

        path = ctx.output("samples.safetensors")
        save_state_dict({"samples": samples.contiguous()}, path)
        report.files.append(str(path))
        if texts is not None:
            report.files.append(str(atomic_write_text(ctx.output("samples.txt"), "\n".join(texts) + "\n")))
        elif kind == "continuous":
            report.files.append(str(_plot_samples(samples.float(), ctx.output("samples.png"))))
    return report


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


@dataclass(frozen=True)
class OrderCheckRun:
    """Measure each method's empirical convergence order on exact toys.

    The orders are fitted to the errors against a fine reference over a range of step counts (1 or 2 expected).
    """

    data: Literal["both", "continuous", "discrete"] = arg("both", help="which data types")
    methods: str | None = arg(None, help="comma-separated subset, e.g. solver1,solver++2")
    quick: bool = arg(False, help="smaller batches and step ranges (seconds instead of a minute)")
    spacing: Literal["time", "logsnr"] = arg("logsnr", help="grid of the continuous solvers")


@dataclass
class OrderCheckReport:
    orders: dict[str, float | None]  # "<data>/<method>" -> measured order
    results: list[OrderResult]  # per method: expected order, step counts, NFE, errors
    files: list[str] = dataclasses.field(default_factory=list)


def order_check(run: OrderCheckRun, ctx: RunContext | None = None) -> OrderCheckReport:
    """`bfn_solver.order.run_order_check`; writes order_check.json and order_check.png when ``ctx.out`` is set."""
    from bfn_solver.order import plot_orders, run_order_check
    from gen_common.atomic import atomic_write_json

    ctx = RunContext.of(ctx)
    data = _data_types(run.data)
    methods = _method_list(run.methods, data)
    with _cpu_threads(ctx):
        results = run_order_check(
            data=data, methods=methods, quick=run.quick, spacing=run.spacing, seed=ctx.seed
        )
    orders = {r.key: None if r.order is None else round(r.order, 3) for r in results}
    report = OrderCheckReport(orders, results)
    if ctx.out is not None:
        details = [
            {"method": r.key, "expected": r.expected, "order": r.order, "error": r.error_kind, "steps": r.steps,
             "nfe": r.nfe, "errors": r.errors, **r.notes}
            for r in results
        ]  # fmt: skip
        path = atomic_write_json(ctx.output("order_check.json"), {"orders": orders, "details": details})
        report.files = [str(path), str(plot_orders(results, ctx.output("order_check.png")))]
    return report


# ---------------------------------------------------------------------------------------------------- bench


@dataclass(frozen=True)
class BenchRun:
    """Quality vs NFE of every method on exact toys, and the NFE each needs to match the original BFN sampler
    at --reference-steps (also without a Monte Carlo floor: exact output moments on a 1-D Gaussian)."""

    data: Literal["both", "continuous", "discrete"] = arg("both", help="which data types")
    methods: str | None = arg(None, help="comma-separated subset, e.g. bfn,solver++2")
    nfes: str = arg("5,10,20,50,100,200,500", help="comma-separated NFE budgets")
    exact_nfes: str | None = arg(None, help="NFE budgets of the exact 1-D Gaussian bench (default: --nfes)")
    reference_steps: int = arg(1000, help="steps of the BFN reference", min=1)
    num_samples: int = arg(10000, help="samples per point", min=1)

    def nfe_list(self, exact: bool = False) -> list[int]:
        text, flag = (self.exact_nfes, "--exact-nfes") if exact and self.exact_nfes else (self.nfes, "--nfes")
        bad = ValueError(f"{flag} must be comma-separated positive integers, e.g. 5,10,20 (got {text!r})")
        try:
            nfes = sorted({int(v) for v in text.split(",") if v.strip()})
        except ValueError:
            raise bad from None
        if not nfes or nfes[0] < 1:
            raise bad
        return nfes


@dataclass
class BenchReport:
    curves: list[
        BenchCurves
    ]  # per data type: metric, Monte Carlo floor, BFN reference, quality vs NFE, NFE to match
    speedup_vs_bfn: dict[str, dict[str, float | None]]  # data -> method -> reference NFE / NFE to match
    files: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The per-data summary written to bench.json."""
        return {
            c.data: {
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
            for c in self.curves
        }


def bench(run: BenchRun, ctx: RunContext | None = None) -> BenchReport:
    """`run_quality_bench` per data type plus `run_exact_gaussian_bench`; writes bench.json and bench.png."""
    from bfn_solver.bench import plot_curves, run_exact_gaussian_bench, run_quality_bench
    from gen_common.atomic import atomic_write_json

    ctx = RunContext.of(ctx)
    data = _data_types(run.data)
    methods = _method_list(run.methods, data)
    nfes, exact_nfes = run.nfe_list(), run.nfe_list(exact=True)

    def chosen(d: str) -> list[str] | None:
        if methods is None:
            return None
        return [m for m in methods if m in (CONTINUOUS_CHOICES if d == "continuous" else DISCRETE_CHOICES)]

    with _cpu_threads(ctx):
        curves = [
            run_quality_bench(
                d,
                methods=chosen(d),
                nfes=nfes,
                reference_steps=run.reference_steps,
                n_samples=run.num_samples,
                seed=ctx.seed,
                device=ctx.torch_device(),
                progress=ctx.progress,
            )
            for d in data
            if chosen(d) != []  # --methods named no method of this data type: skip it
        ]
        if "continuous" in data and chosen("continuous") != []:
            # The same comparison without a Monte Carlo floor: exact output moments on a 1-D Gaussian.
            exact = run_exact_gaussian_bench(
                methods=chosen("continuous"), nfes=exact_nfes, reference_steps=run.reference_steps
            )
            curves.insert(1, exact)
    report = BenchReport(curves, {c.data: c.speedups() for c in curves})
    if ctx.out is not None:
        path = atomic_write_json(ctx.output("bench.json"), report.to_dict())
        report.files = [str(path), str(plot_curves(curves, ctx.output("bench.png")))]
    return report


# ---------------------------------------------------------------------------------------------------- train

TRAIN_DEFAULTS = TrainConfig(
    steps=2000, lr=2e-3, warmup_steps=100, schedule="cosine", min_lr_ratio=0.1, log_every=100
)


@dataclass(frozen=True)
class TrainRun:
    """Train a small BFN with the continuous-time loss on offline data (resumes from OUT/checkpoints).

    The finished model is written to OUT/model (config.json, model.safetensors, training.json and, for text,
    tokenizer.json); `bfn-solver sample --model OUT` finds it there.
    """

    data: Literal["mixture2d", "categorical", "shapes", "text"] = arg(
        "mixture2d", help="offline training data"
    )
    batch_size: int = arg(256, help="examples per optimizer step", min=1)
    hidden: int = arg(128, help="width of the network (shapes: a multiple of 8; text: of 4)", min=1)
    length: int | None = arg(None, help="text window length (default 32)", min=2)
    train: TrainConfig = dataclasses.field(default_factory=lambda: TRAIN_DEFAULTS)


@dataclass
class TrainReport:
    data: str
    steps: int
    final_loss: float | None
    resumed_from: int
    seconds: float
    model: str
    history: list[dict[str, float]]


def _build(run: TrainRun, seed: int) -> tuple[Any, Any, Any]:
    """(model, data, tokenizer) for ``run.data``."""
    from bfn_solver.checkpoints import BFNImageConfig, BFNImageModel, BFNTextConfig, BFNTextModel
    from bfn_solver.toy import ContinuousMLP, ContinuousMLPConfig, DiscreteMLP, DiscreteMLPConfig
    from bfn_solver.training import shapes_dataset, text_dataset, toy_source

    if run.data == "mixture2d":
        return ContinuousMLP(ContinuousMLPConfig(dim=2, hidden=run.hidden)), toy_source("mixture2d")[1], None
    if run.data == "categorical":
        model = DiscreteMLP(DiscreteMLPConfig(length=2, num_classes=4, hidden=run.hidden))
        return model, toy_source("categorical")[1], None
    if run.data == "shapes":
        if run.hidden % 8:
            raise ValueError(
                f"--hidden must be a multiple of 8 for --data shapes (group norm), got {run.hidden}"
            )
        cfg = BFNImageConfig(
            embedding_dim=run.hidden, n_blocks=2, norm_groups=8, image_size=8, dropout_prob=0.0
        )
        return BFNImageModel(cfg), shapes_dataset(4096, 8, seed), None
    if run.hidden % 4:
        raise ValueError(
            f"--hidden must be a multiple of 4 for --data text (4 attention heads), got {run.hidden}"
        )
    data, tokenizer = text_dataset(run.length or 32)
    cfg = BFNTextConfig(
        vocab_size=tokenizer.vocab_size,
        seq_len=data.shape[1],
        n_layer=2,
        n_head=4,
        n_embd=run.hidden,
        beta_1=3.0,
    )
    return BFNTextModel(cfg), data, tokenizer


def train(run: TrainRun, ctx: RunContext | None = None) -> TrainReport:
    """`bfn_solver.training.train_bfn` on ``run.data``; checkpoints in OUT/checkpoints (resumed), model in OUT/model."""
    import torch

    from bfn_solver.training import train_bfn
    from gen_common.atomic import atomic_write_json

    ctx = RunContext.of(ctx)
    if ctx.out is None:
        raise ValueError("train needs --out DIR (checkpoints and the final model are written there)")
    out = Path(ctx.out).expanduser()
    # Claim the model's files before training: a finished model is refused (unless --overwrite) before any work.
    paths = {name: ctx.output(f"model/{name}") for name in MODEL_FILES}
    torch.manual_seed(
        ctx.seed
    )  # parameter initialisation only; the loop's randomness is seeded by TrainConfig
    model, data, tokenizer = _build(run, ctx.seed)
    cfg = dataclasses.replace(run.train, seed=ctx.seed)
    t0 = time.perf_counter()
    res = train_bfn(
        model, data, model.schedule, cfg, batch_size=run.batch_size, out_dir=out / "checkpoints",
        device=ctx.device, progress=ctx.progress,
    )  # fmt: skip
    model_dir = paths["config.json"].parent
    model.cpu().save_pretrained(model_dir, overwrite=True)
    if tokenizer is not None:
        tokenizer.save(paths["tokenizer.json"])
    atomic_write_json(paths["training.json"], {"data": run.data, "steps": res.steps})
    return TrainReport(
        run.data, res.steps, res.final_loss, res.resumed_from, time.perf_counter() - t0, str(model_dir),
        res.history[-5:],
    )  # fmt: skip
