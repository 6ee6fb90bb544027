"""What each `genprobe` command does, as library functions: one frozen config and one function per command.

The CLI (`genprobe.cli`), the tour's demo and a notebook all call these::

    from genprobe.runs import DataConfig, SweepRun, sweep
    report = sweep(SweepRun(DataConfig(source=("real=photos/", "fake=samples/")), cutoffs="4,8,16"))

Files are written only through ``ctx.output(name)`` (the output-folder policy of `gen_common.cli.RunContext`):
nothing in ``--out`` but the files a command lists is ever replaced or deleted. torch is imported inside the
functions so that ``genprobe --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gen_common.cli import RunContext, arg, check_outputs
from genprobe.config import ProbeConfig, SmallSplitWarning

if TYPE_CHECKING:
    from genprobe.data import ImageSource, SplitConfig
    from genprobe.experiments import Report

__all__ = [
    "BenchReport",
    "BenchRun",
    "DataConfig",
    "EdgesRun",
    "ExperimentReport",
    "MixingRun",
    "MulticlassRun",
    "PairwiseRun",
    "PredictReport",
    "PredictRun",
    "RobustnessRun",
    "ScalingRun",
    "SpectrumRun",
    "SweepRun",
    "ToyRun",
    "TrainReport",
    "TrainRun",
    "bench",
    "edges",
    "mixing",
    "multiclass",
    "pairwise",
    "predict",
    "robustness",
    "scaling",
    "spectrum",
    "sweep",
    "toy",
    "train",
]

TOY_PAIRS = ("hf", "lf")  # genprobe.toy.PAIRS (repeated here: that module imports torch)
REPORT_FILES = ("{name}.json", "{name}.csv", "{name}.png")
CLASSIFIER_FILES = ("classifier/config.json", "classifier/model.safetensors")
TRAIN_FILES = (*CLASSIFIER_FILES, "metrics.json", "confusion.json", "confusion.csv", "confusion.png")


def report_files(name: str) -> tuple[str, ...]:
    return tuple(f.format(name=name) for f in REPORT_FILES)


def _csv(text: str, flag: str, kind: type = str, minimum: float | None = None) -> list[Any]:
    """A comma-separated flag value as a list; bad entries are a one-line error naming the flag."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        values = [kind(t) for t in items]
    except ValueError:
        raise ValueError(f"{flag} expects comma-separated {kind.__name__} values, got {text!r}") from None
    if not values:
        raise ValueError(f"{flag} is empty")
    if minimum is not None and any(v < minimum for v in values):
        raise ValueError(f"{flag} entries must be at least {minimum:g}, got {text!r}")
    return values


@contextlib.contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """The :class:`~genprobe.config.SmallSplitWarning` messages raised inside the block (in order, without repeats),
    filled in when the block ends. Every warning is issued again on the way out, so a library caller's filters
    and the CLI's one-line ``warning:`` still see it."""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SmallSplitWarning)
        yield found
    seen: set[str] = set()
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, SmallSplitWarning):
            if text in seen:
                continue
            seen.add(text)
            found.append(text)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


# ------------------------------------------------------------------------------------------------ the data


@dataclass(frozen=True)
class DataConfig:
    """Image sources and how they are read and split (per class = per source)."""

    source: tuple[str, ...] = arg(
        (),
        help="an image source NAME=PATH (repeat the flag): a folder of images or a tensor file",
        metavar="NAME=PATH",
        repeat=True,
    )
    size: int | None = arg(
        None, help="square size in px; default: the images' native size (all must match)", min=1
    )
    resize_mode: Literal["center_crop", "resize_crop", "resize"] = arg(
        "center_crop",
        help="with --size: centre crop without resampling (keeps the high frequencies), resize the shorter side "
        "then crop, or resize",
    )
    channels: int = arg(3, help="RGB (3) or grayscale (1)", choices=(1, 3))
    max_images: int | None = arg(None, help="use at most this many images per folder", min=1)
    cache: bool = arg(
        True, help="keep decoded images in memory (--no-cache: decode on every use, low memory)"
    )
    workers: int | None = arg(None, help="decoding threads (default: min(8, CPUs))", min=1)
    test_per_class: int | None = arg(
        None, help="test images per source (default: 20%% of the balanced count)", min=1
    )
    val_per_class: int | None = arg(
        None, help="early-stopping images per source (default: 10%% of the rest)", min=0
    )
    train_per_class: int | None = arg(None, help="training images per source (default: all remaining)", min=1)

    def sources(self, minimum: int = 2) -> list[ImageSource]:
        from genprobe.data import ImageSource, Preprocess

        if len(self.source) < minimum:
            raise ValueError(
                f"give at least {minimum} sources with --source NAME=PATH (got {len(self.source)})"
            )
        pre = Preprocess(size=self.size, mode=self.resize_mode, channels=self.channels)
        # Library callers may pass ImageSource objects (in-memory tensors) instead of NAME=PATH strings.
        return [
            s
            if isinstance(s, ImageSource)
            else ImageSource.parse(
                s, preprocess=pre, cache=self.cache, workers=self.workers, max_images=self.max_images
            )
            for s in self.source
        ]

    def split(self, seed: int) -> SplitConfig:
        from genprobe.data import SplitConfig

        return SplitConfig(
            test_per_class=self.test_per_class,
            val_per_class=self.val_per_class,
            train_per_class=self.train_per_class,
            seed=seed,
        )


def _skipped(sources: Sequence[ImageSource]) -> dict[str, int]:
    """Unreadable files the folder sources left out (also warned about on stderr)."""
    return {s.name: len(s.skipped) for s in sources if s.skipped}


# ----------------------------------------------------------------------------------------------------- train


@dataclass(frozen=True)
class TrainRun:
    """Train one classifier over the sources and report its test accuracy.

    With --out it saves classifier/, metrics.json and confusion.{json,csv,png}; training checkpoints go to
    OUT/checkpoints, and a rerun after an interruption continues from them.
    """

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    probe: ProbeConfig = dataclasses.field(default_factory=ProbeConfig)
    keep_checkpoints: bool = arg(False, help="keep the training checkpoints in OUT/checkpoints")
    resume: bool = arg(
        False, help="require a checkpoint in OUT/checkpoints to continue from (resuming is automatic)"
    )


@dataclass
class TrainReport:
    sources: list[str]
    arch: str
    filter: str
    accuracy: float
    accuracy_ci95: list[float] | None
    balanced_accuracy: float
    average_precision: float | None  # two sources only
    per_class_accuracy: dict[str, float]
    confusion: list[list[int]]
    n: int  # test images
    steps: int
    best_step: int | None
    early_stopped: bool
    best_val_accuracy: float | None
    train_images: int
    val_images: int
    split: dict[str, int]
    train_seconds: float
    train_images_per_second: float
    skipped_files: dict[str, int]
    out: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)  # SmallSplitWarning messages


_CHECKPOINT_FILES = ("model.safetensors", "ema.safetensors", "optimizer.pt", "trainer_state.json")


def _remove_own_checkpoints(folder: Path) -> None:
    """Delete the checkpoints training wrote (step-*/ with the loop's files, and latest), never anything else."""
    if not folder.is_dir():
        return
    for step in folder.glob("step-*"):
        if step.is_dir() and (step / "trainer_state.json").is_file():
            for name in _CHECKPOINT_FILES:
                (step / name).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: something else is there; leave it
                step.rmdir()
    (folder / "latest").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def train(run: TrainRun, ctx: RunContext | None = None) -> TrainReport:
    """`genprobe.probe.train_probe` on a balanced split of the sources, evaluated on the test split."""
    from genprobe.data import balanced_split, split_sets
    from genprobe.experiments import confusion_report
    from genprobe.probe import train_probe

    ctx = RunContext.of(ctx)
    out = Path(ctx.out).expanduser() if ctx.out is not None else None
    ckpt = out / "checkpoints" if out is not None else None
    if run.resume and (ckpt is None or not (ckpt / "latest").is_file()):
        raise FileNotFoundError(f"--resume: {ckpt or 'no --out'} holds no checkpoint to continue from")
    # Claim the outputs first: a folder holding a finished run is refused (unless --overwrite) before any work.
    paths = {name: ctx.output(name) for name in TRAIN_FILES} if out is not None else {}
    sources = run.data.sources()
    tr, va, te = split_sets(sources, balanced_split(sources, run.data.split(ctx.seed)))
    with collect_warnings() as found:
        res = train_probe(
            tr, va, run.probe, test_set=te, device=ctx.device, checkpoint_dir=ckpt, progress=ctx.progress
        )
    assert res.test is not None
    summary = res.summary()
    report = TrainReport(
        sources=[s.name for s in sources],
        arch=run.probe.arch,
        filter=run.probe.filter,
        accuracy=res.test.accuracy,
        accuracy_ci95=summary["accuracy_ci95"],
        balanced_accuracy=res.test.balanced_accuracy,
        average_precision=res.test.average_precision,
        per_class_accuracy=res.test.per_class_accuracy,
        confusion=res.test.confusion,
        n=res.test.n,
        steps=res.steps,
        best_step=res.best_step,
        early_stopped=res.early_stopped,
        best_val_accuracy=summary.get("best_val_accuracy"),
        train_images=res.train_images,
        val_images=res.val_images,
        split={"train_per_class": len(tr) // len(sources), "test_per_class": len(te) // len(sources)},
        train_seconds=res.train_seconds,
        train_images_per_second=res.images_per_second,
        skipped_files=_skipped(sources),
        warnings=found,
    )
    if out is not None:
        from gen_common.atomic import atomic_write_json
        from gen_common.jsonio import to_jsonable

        report.out = str(out)
        res.classifier.save_pretrained(paths["classifier/config.json"].parent, overwrite=True)
        atomic_write_json(paths["metrics.json"], to_jsonable(report))
        title = f"test confusion ({run.probe.arch}, filter {run.probe.filter})"
        confusion_report(res.test, title).write(ctx.output)
        if not run.keep_checkpoints:
            _remove_own_checkpoints(ckpt)
    return report


# ------------------------------------------------------------------------------------------- the report commands


@dataclass
class ExperimentReport:
    report: str  # the name of the files: <report>.json, .csv, .png
    title: str
    columns: list[str]
    rows: list[list[Any]]
    data: dict[str, Any]  # the experiment's headline values (raw accuracy, matrix, ...)
    files: list[str]
    skipped_files: dict[str, int] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)  # SmallSplitWarning messages


def _finish(report: Report, ctx: RunContext, keys: Sequence[str] = (), skipped: dict[str, int] | None = None):
    files = report.write(ctx.output) if ctx.out is not None else []
    data = {k: report.data.get(k) for k in keys}
    return ExperimentReport(
        report.name, report.title, report.columns, report.rows, data, [str(f) for f in files], skipped or {}
    )


def _experiment(
    run: Any,
    ctx: RunContext | None,
    experiment: Callable[..., Report],
    keys: Sequence[str] = (),
    **kwargs: Any,
) -> ExperimentReport:
    """Shared body of the report commands: sources -> experiment -> files + one report."""
    ctx = RunContext.of(ctx)
    sources = run.data.sources()
    for name, value in list(kwargs.items()):
        if callable(value):  # arguments that depend on the sources (default cutoffs)
            kwargs[name] = value(sources)
    with collect_warnings() as found:
        report = experiment(
            sources,
            config=run.probe,
            split=run.data.split(ctx.seed),
            device=ctx.device,
            progress=ctx.progress,
            **kwargs,
        )
    done = _finish(report, ctx, keys, _skipped(sources))
    done.warnings = found
    return done


def _no_filter(run: Any, command: str) -> None:
    if run.probe.filter != "none":
        raise ValueError(f"{command} sets the probe filter itself; drop --filter {run.probe.filter}")


@dataclass(frozen=True)
class SweepRun:
    """Accuracy vs low-/high-pass cutoff (the frequency probe)."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    probe: ProbeConfig = dataclasses.field(default_factory=ProbeConfig)
    cutoffs: str | None = arg(None, help="comma-separated radii in cycles per image (default: S/16 ... S/2)")
    boundary: Literal["circular", "reflect"] = arg(
        "circular",
        help="FFT boundary: circular (the DFT's) or reflect (mirror-extended; no ringing at borders)",
    )


def sweep(run: SweepRun, ctx: RunContext | None = None) -> ExperimentReport:
    """`genprobe.experiments.frequency_sweep`: frequency_sweep.{json,csv,png}."""
    from genprobe.experiments import default_cutoffs, frequency_sweep
    from genprobe.filters import parse_filter

    _no_filter(run, "sweep")
    if run.cutoffs is not None:
        cutoffs: Any = _csv(run.cutoffs, "--cutoffs", float)
        for r in cutoffs:
            parse_filter(f"lowpass:{r}")  # a bad cutoff fails before any image is read
    else:
        cutoffs = lambda srcs: default_cutoffs(min(srcs[0].image_shape[1:]))  # noqa: E731
    return _experiment(run, ctx, frequency_sweep, ("raw_accuracy",), cutoffs=cutoffs, boundary=run.boundary)


@dataclass(frozen=True)
class PairwiseRun:
    """Binary accuracy for every pair of sources (a matrix)."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    probe: ProbeConfig = dataclasses.field(default_factory=ProbeConfig)


def pairwise(run: PairwiseRun, ctx: RunContext | None = None) -> ExperimentReport:
    """`genprobe.experiments.pairwise`: pairwise.{json,csv,png}."""
    from genprobe.experiments import pairwise as experiment

    return _experiment(run, ctx, experiment, ("matrix", "row_names"))


@dataclass(frozen=True)
class MulticlassRun:
    """One classifier over all sources: confusion matrix."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    probe: ProbeConfig = dataclasses.field(default_factory=ProbeConfig)


def multiclass(run: MulticlassRun, ctx: RunContext | None = None) -> ExperimentReport:
    """`genprobe.experiments.multiclass`: multiclass.{json,csv,png}."""
    from genprobe.experiments import multiclass as experiment

    return _experiment(run, ctx, experiment, ("accuracy",))


@dataclass(frozen=True)
class EdgesRun:
    """Accuracy on raw images vs Sobel / Canny edge maps."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    probe: ProbeConfig = dataclasses.field(default_factory=ProbeConfig)
    filters: str = arg("none,sobel,canny", help="comma-separated filters to compare")


def edges(run: EdgesRun, ctx: RunContext | None = None) -> ExperimentReport:
    """`genprobe.experiments.edges`: edges.{json,csv,png}."""
    from genprobe.experiments import edges as experiment
    from genprobe.filters import parse_filter

    _no_filter(run, "edges")
    filters = _csv(run.filters, "--filters")
    for f in filters:
        parse_filter(f)
    return _experiment(run, ctx, experiment, filters=filters)


@dataclass(frozen=True)
class ScalingRun:
    """Accuracy vs training images per class."""

    train_sizes: str = arg(help="comma-separated training images per class, e.g. 10,100,1000")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    probe: ProbeConfig = dataclasses.field(default_factory=ProbeConfig)


def scaling(run: ScalingRun, ctx: RunContext | None = None) -> ExperimentReport:
    """`genprobe.experiments.data_scaling`: data_scaling.{json,csv,png}."""
    from genprobe.experiments import data_scaling

    sizes = _csv(run.train_sizes, "--train-sizes", int, minimum=1)
    return _experiment(run, ctx, data_scaling, train_sizes=sizes)


@dataclass(frozen=True)
class RobustnessRun:
    """Accuracy of one classifier under JPEG / resize / blur."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    probe: ProbeConfig = dataclasses.field(default_factory=ProbeConfig)
    perturbations: str = arg(
        "none,jpeg:95,jpeg:75,jpeg:50,resize:0.5,blur:1", help="comma-separated test-time perturbations"
    )


def robustness(run: RobustnessRun, ctx: RunContext | None = None) -> ExperimentReport:
    """`genprobe.experiments.robustness`: robustness.{json,csv,png}."""
    from genprobe.experiments import robustness as experiment
    from genprobe.filters import parse_perturbation

    perturbations = _csv(run.perturbations, "--perturbations")
    for p in perturbations:
        parse_perturbation(p)  # a bad perturbation fails before training, not after
    return _experiment(run, ctx, experiment, perturbations=perturbations)


@dataclass(frozen=True)
class MixingRun:
    """Mix generated images into a generator's real training data vs replace real data with them.

    Give two sources: the real images first, then the generated ones. The refitted generator is trained on n
    real images (real), n real + k generated (mix k) and n - k real + k generated (replace k); a classifier tells
    its samples from held-out real images (the later real images). 'empirical' is the ideal generator (its
    samples follow its training data exactly: the answer is (1 + f)/2, f the generated fraction); 'gaussian'
    fits a Gaussian. At scale, call genprobe.mixing.data_mixing with your own fit function.
    """

    real: int = arg(help="n: real training images of the refitted generator", min=1)
    generated: str = arg(help="comma-separated k: generated images per setting (1 <= k <= n)")
    samples: int | None = arg(None, help="samples per refitted generator (default n)", min=2)
    fit: Literal["empirical", "gaussian"] = arg("empirical", help="the refitted generator")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    probe: ProbeConfig = dataclasses.field(default_factory=ProbeConfig)


def mixing(run: MixingRun, ctx: RunContext | None = None) -> ExperimentReport:
    """`genprobe.mixing.data_mixing`: data_mixing.{json,csv,png}."""
    from genprobe.mixing import data_mixing

    ks = _csv(run.generated, "--generated", int, minimum=1)
    ctx = RunContext.of(ctx)
    sources = run.data.sources()
    if len(sources) != 2:
        raise ValueError(
            f"mixing takes two sources, the real images then the generated ones (got {len(sources)})"
        )
    with collect_warnings() as found:
        report = data_mixing(
            sources[0],
            sources[1],
            run.real,
            ks,
            run.probe,
            run.data.split(ctx.seed),
            num_samples=run.samples,
            fit=run.fit,
            seed=ctx.seed,
            device=ctx.device,
            progress=ctx.progress,
        )
    done = _finish(report, ctx, (), _skipped(sources))
    done.warnings = found
    return done


@dataclass(frozen=True)
class SpectrumRun:
    """Radial power spectrum of each source (plot + table)."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    num_images: int = arg(256, help="images per source to average", min=1)


def spectrum(run: SpectrumRun, ctx: RunContext | None = None) -> ExperimentReport:
    """`genprobe.spectrum.radial_power_spectrum` averaged per source: spectrum.{json,csv,png}."""
    import torch

    from genprobe.experiments import Report
    from genprobe.plotting import plot_spectra
    from genprobe.spectrum import radial_power_spectrum

    ctx = RunContext.of(ctx)
    sources = run.data.sources(minimum=1)
    spectra, radii = {}, None
    for s in sources:
        x = s.get(torch.arange(min(len(s), run.num_images)))
        radii, p = radial_power_spectrum(x - x.mean(dim=(-2, -1), keepdim=True))
        spectra[s.name] = p.mean(dim=(0, 1))
    assert radii is not None
    rows = [[float(r), *[float(spectra[k][i]) for k in spectra]] for i, r in enumerate(radii)]
    report = _finish(
        Report("spectrum", "radial power spectrum (mean removed)", ["radius", *spectra], rows), ctx
    )
    if ctx.out is not None:
        report.files.append(str(plot_spectra(radii, spectra, ctx.output("spectrum.png"))))
    report.skipped_files = _skipped(sources)
    return report


# ------------------------------------------------------------------------------------------------------ toy


def _toy_probe_defaults() -> ProbeConfig:
    return ProbeConfig(steps=200, eval_every=50, width=16, batch_size=32)


@dataclass(frozen=True)
class ToyRun:
    """The offline toy probe: sources that differ in exactly one frequency band.

    Two toy pairs: 'hf' differs only above the cutoff, 'lf' only below. Expected: hf at chance after the low-pass
    and ~1 after the high-pass; lf the reverse. --export DIR writes the toy sources as PNG folders instead.
    """

    probe: ProbeConfig = dataclasses.field(default_factory=_toy_probe_defaults)
    size: int = arg(16, help="toy image size in px", min=4)
    channels: int = arg(1, help="grayscale (1) or RGB (3)", choices=(1, 3))
    num_images: int = arg(600, help="images per source", min=2)
    pairs: str = arg(",".join(TOY_PAIRS), help="comma-separated toy pairs (hf, lf)")
    test_per_class: int = arg(200, help="test images per source", min=1)
    val_per_class: int = arg(50, help="early-stopping images per source", min=0)
    export: Path | None = arg(None, help="write the toy sources as PNG folders into this folder and stop")


@dataclass
class ToyReport:
    title: str
    cutoff: float
    accuracies: dict[str, float]  # "<pair> <filter>" -> test accuracy
    rows: list[list[Any]]  # pair, filter, accuracy, expected, ...
    files: list[str]
    exported: dict[str, str] | None = None  # --export: source name -> folder
    warnings: list[str] = dataclasses.field(default_factory=list)  # SmallSplitWarning messages


def toy(run: ToyRun, ctx: RunContext | None = None) -> ToyReport:
    """`genprobe.experiments.toy_probe` (toy.{json,csv,png}), or with ``export`` the toy sources as PNG folders."""
    import torch

    from genprobe.data import SplitConfig
    from genprobe.experiments import toy_probe
    from genprobe.toy import ToyConfig, toy_pair

    ctx = RunContext.of(ctx)
    pairs = _csv(run.pairs, "--pairs")
    unknown = [p for p in pairs if p not in TOY_PAIRS]
    if unknown:
        raise ValueError(f"--pairs: unknown toy pair(s) {', '.join(unknown)}; use {', '.join(TOY_PAIRS)}")
    cfg = ToyConfig(size=run.size, channels=run.channels)
    if run.export is not None:
        # The export folder follows the same policy as --out: existing images are replaced only with --overwrite.
        names = [f"{p}-{side}" for p in pairs for side in ("a", "b")]
        check_outputs(run.export, [f"{n}/*.png" for n in names], overwrite=ctx.overwrite)
        export = RunContext(out=run.export, overwrite=ctx.overwrite)
        written = {}
        for pair in pairs:
            for s in toy_pair(pair, run.num_images, cfg, seed=ctx.seed):
                paths = write_images(s.get(torch.arange(len(s))), s.name, export.output)
                written[s.name] = str(paths[0].parent)
        return ToyReport("toy sources exported", cfg.cutoff, {}, [], [], exported=written)
    split = SplitConfig(test_per_class=run.test_per_class, val_per_class=run.val_per_class, seed=ctx.seed)
    with collect_warnings() as found:
        report = toy_probe(
            cfg, run.probe, num_images=run.num_images, split=split, pairs=pairs, seed=ctx.seed,
            device=ctx.device, progress=ctx.progress,
        )  # fmt: skip
    files = report.write(ctx.output) if ctx.out is not None else []
    accuracies = {f"{r[0]} {r[1]}": r[2] for r in report.rows}
    return ToyReport(
        report.title, cfg.cutoff, accuracies, report.rows, [str(f) for f in files], warnings=found
    )


def write_images(images: Any, name: str, path_for: Callable[[str], Path]) -> list[Path]:
    from genprobe.data import write_image_folder

    return write_image_folder(images, name, path_for=path_for)


# -------------------------------------------------------------------------------------------------- predict


@dataclass(frozen=True)
class PredictRun:
    """Class probabilities of a saved classifier on a folder of images (predictions.{json,csv} with --out)."""

    classifier: str = arg(help="the folder `genprobe train --out` wrote, or its classifier/ folder")
    images: str = arg(help="a folder of images or a tensor file")
    size: int | None = arg(None, help="square size in px (default: the classifier's)", min=1)
    resize_mode: Literal["center_crop", "resize_crop", "resize"] = arg(
        "center_crop", help="how images are sized"
    )
    batch_size: int = arg(256, help="images per batch", min=1)
    workers: int | None = arg(None, help="decoding threads", min=1)


@dataclass
class PredictReport:
    images: int
    predicted_counts: dict[str, int]
    mean_probability: dict[str, float]
    files: list[str] = dataclasses.field(default_factory=list)


def predict(run: PredictRun, ctx: RunContext | None = None) -> PredictReport:
    import torch

    from genprobe.data import ImageSource, Preprocess
    from genprobe.experiments import Report
    from genprobe.models import DistributionClassifier

    ctx = RunContext.of(ctx)
    dev = ctx.torch_device()
    folder = Path(run.classifier).expanduser()
    if not (folder / "config.json").is_file() and (folder / "classifier" / "config.json").is_file():
        folder = folder / "classifier"  # the folder `train --out` wrote
    clf = DistributionClassifier.from_pretrained(folder, device=dev)
    c, h, w = clf.config.in_channels, *clf.config.image_size
    pre = Preprocess(size=run.size or (h if h == w else None), mode=run.resize_mode, channels=c)
    src = ImageSource.parse(run.images, preprocess=pre, workers=run.workers)
    if src.image_shape != (c, h, w):
        raise ValueError(
            f"the classifier expects images of shape {(c, h, w)}, the source gives {src.image_shape}"
        )
    probs = []
    for start in range(0, len(src), run.batch_size):
        x = src.get(torch.arange(start, min(len(src), start + run.batch_size))).to(dev)
        probs.append(clf.predict_proba(x).cpu())
    p = torch.cat(probs)
    names = clf.class_names
    counts = torch.bincount(p.argmax(1), minlength=len(names))
    report = PredictReport(
        len(src), {n: int(k) for n, k in zip(names, counts)}, {n: float(v) for n, v in zip(names, p.mean(0))}
    )
    if ctx.out is not None:
        rows = [[str(f), *[float(v) for v in row]] for f, row in zip(src.paths or range(len(src)), p)]
        written = Report("predictions", "per-image class probabilities", ["image", *names], rows).write(
            ctx.output
        )
        report.files = [str(f) for f in written]
    return report


# ---------------------------------------------------------------------------------------------------- bench


@dataclass(frozen=True)
class BenchRun:
    """Training throughput and time-to-accuracy with vs without the decoded-image cache."""

    stored_size: int = arg(128, help="PNG size on disk", min=8)
    crop: int = arg(32, help="centre crop the classifier sees", min=4)
    num_images: int = arg(384, help="images per source", min=8)
    steps: int = arg(30, help="steps per throughput measurement", min=1)
    repeats: int = arg(3, help="repeats of each measurement", min=1)
    workers: int = arg(1, help="decoding threads", min=1)


@dataclass
class BenchReport:
    device: str
    stored_size: int
    image_size: int
    channels: int
    images_per_source: int
    batch_size: int
    throughput_steps: int
    uncached_images_per_s: float
    cached_images_per_s: float
    throughput_ratio: float
    target_accuracy: float
    uncached_seconds_to_target: float  # NaN: the target was not reached
    uncached_steps_to_target: int | None
    cached_seconds_to_target: float
    cached_steps_to_target: int | None
    time_to_target_ratio: float
    files: list[str] = dataclasses.field(default_factory=list)


def bench(run: BenchRun, ctx: RunContext | None = None) -> BenchReport:
    """`genprobe.bench.run_benchmark` (bench.json with --out)."""
    from gen_common.atomic import atomic_write_json
    from genprobe.bench import run_benchmark

    ctx = RunContext.of(ctx)
    result = run_benchmark(**dataclasses.asdict(run), device=ctx.device, seed=ctx.seed)
    report = BenchReport(**result)
    if ctx.out is not None:
        report.files = [str(atomic_write_json(ctx.output("bench.json"), result))]
    return report
