"""Console script ``genprobe``: train distribution classifiers between image sources and probe what they use."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gen_common.atomic import atomic_write_json
from gen_common.cli import add_common_args, emit, format_table, run_cli
from gen_common.device import resolve_device
from genprobe.data import ImageSource, Preprocess, SplitConfig, balanced_split, split_sets, write_image_folder
from genprobe.experiments import (
    Report,
    confusion_report,
    data_scaling,
    default_cutoffs,
    edges,
    frequency_sweep,
    multiclass,
    pairwise,
    robustness,
    toy_probe,
)
from genprobe.filters import parse_filter, parse_perturbation
from genprobe.models import ARCHS
from genprobe.probe import ProbeConfig, train_probe
from genprobe.toy import PAIRS, ToyConfig, toy_pair

DESCRIPTION = """\
Distribution classification (arXiv 2405.18029): train classifiers whose classes are image sources (real photos,
generator A, generator B, ...) and probe what they rely on: low or high frequencies, edges.

Sources are given as --source NAME=PATH, PATH a folder of png/jpg/webp images (recursive) or a .safetensors /
.pt / .npy file with an (N, C, H, W) tensor. Frequency cutoffs R are radii in cycles per image (DFT index units):
lowpass:R keeps r <= R, highpass:R keeps r > R.

examples:
  genprobe train --source real=photos/ --source fake=samples/ --filter highpass:16 --json
  genprobe sweep --source real=photos/ --source fake=samples/ --cutoffs 4,8,16,32 --out runs/sweep
  genprobe pairwise --source real=a/ --source dit=b/ --source uvit=c/
  genprobe toy --json            # the offline proof: chance after low-pass, ~1 after high-pass, and the reverse
"""


def _csv_floats(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def _csv_ints(text: str) -> list[int]:
    return [int(v) for v in _csv_floats(text)]


def _add_data_args(p: argparse.ArgumentParser, *, min_sources: int = 2) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help=f"an image source (repeat; at least {min_sources}): a folder of images or a tensor file",
    )
    g.add_argument(
        "--size",
        type=int,
        default=None,
        help="square size in px; default: the images' native size (all must match)",
    )
    g.add_argument(
        "--resize-mode",
        default="center_crop",
        choices=["center_crop", "resize_crop", "resize"],
        help="with --size: centre crop without resampling (default; keeps the high frequencies), resize the "
        "shorter side then crop, or resize",
    )
    g.add_argument("--channels", type=int, default=3, choices=[1, 3], help="RGB (3) or grayscale (1)")
    g.add_argument("--max-images", type=int, default=None, help="use at most this many images per folder")
    g.add_argument("--no-cache", action="store_true", help="decode every image on every use (low memory)")
    g.add_argument("--workers", type=int, default=None, help="decoding threads (default: min(8, CPUs))")
    g.add_argument("--test-per-class", type=int, default=None, help="default: 20%% of the balanced count")
    g.add_argument(
        "--val-per-class", type=int, default=None, help="early-stopping set; default: 10%% of the rest"
    )
    g.add_argument("--train-per-class", type=int, default=None, help="default: all remaining images")


def _add_probe_args(p: argparse.ArgumentParser, *, with_filter: bool = True) -> None:
    g = p.add_argument_group("classifier")
    g.add_argument(
        "--arch",
        default="small_cnn",
        help=f"{', '.join(ARCHS)} or timm:<name> (weights=None; default: %(default)s)",
    )
    if with_filter:
        g.add_argument(
            "--filter",
            default="none",
            help="lowpass:R | highpass:R | bandpass:R1:R2 | gaussian-lowpass:R | gaussian-highpass:R | "
            "sobel | canny | edges | none (R in cycles per image)",
        )
    g.add_argument("--steps", type=int, default=500, help="maximum optimizer steps (default: %(default)s)")
    g.add_argument("--batch-size", type=int, default=64)
    g.add_argument("--lr", type=float, default=None, help="default: 2e-3 for small_cnn, 1e-4 otherwise")
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--eval-every", type=int, default=100, help="validation cadence in steps")
    g.add_argument(
        "--patience", type=int, default=5, help="early stopping after N evaluations; 0 turns it off"
    )
    g.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    g.add_argument("--train-perturb", default=None, help="jpeg:Q | resize:S | blur:SIGMA on training batches")
    g.add_argument("--width", type=int, default=32, help="small_cnn base width")
    g.add_argument("--patch-size", type=int, default=16, help="vit_small patch size")
    g.add_argument(
        "--backbone", default="", help="linear_probe trunk: resnet18, resnet50, convnext_tiny, vit_small"
    )
    g.add_argument("--backbone-weights", default=None, help="state dict for the trunk (safetensors or .pt)")
    g.add_argument(
        "--normalization",
        default="data",
        choices=["data", "imagenet", "clip", "none"],
        help="input standardisation: data (filtered training-set mean/std; default), or the statistics a "
        "pretrained trunk was trained with (imagenet / clip: use one with --backbone-weights)",
    )
    g.add_argument("--mixed-precision", default="auto", choices=["auto", "no", "bf16", "fp16"])
    g.add_argument("--compile", action="store_true", help="torch.compile the network")
    g.add_argument(
        "--overwrite", action="store_true", help="replace the contents of an existing --out folder"
    )


def _probe_config(args: argparse.Namespace, **override: Any) -> ProbeConfig:
    lr = args.lr if args.lr is not None else (2e-3 if args.arch == "small_cnn" else 1e-4)
    fields = dict(
        arch=args.arch,
        filter=getattr(args, "filter", "none"),
        steps=args.steps,
        batch_size=args.batch_size,
        lr=lr,
        weight_decay=args.weight_decay,
        eval_every=args.eval_every,
        patience=args.patience or None,
        hflip=not args.no_flip,
        train_perturb=args.train_perturb,
        width=args.width,
        patch_size=args.patch_size,
        backbone=args.backbone,
        backbone_weights=args.backbone_weights,
        normalization=args.normalization,
        mixed_precision=args.mixed_precision,
        compile=args.compile,
        seed=args.seed,
    )
    fields.update(override)
    return ProbeConfig(**fields)


def _split_config(args: argparse.Namespace) -> SplitConfig:
    return SplitConfig(
        test_per_class=args.test_per_class,
        val_per_class=args.val_per_class,
        train_per_class=args.train_per_class,
        seed=args.seed,
    )


def _sources(args: argparse.Namespace, minimum: int = 2) -> list[ImageSource]:
    if len(args.source) < minimum:
        raise ValueError(f"give at least {minimum} sources with --source NAME=PATH (got {len(args.source)})")
    pre = Preprocess(size=args.size, mode=args.resize_mode, channels=args.channels)
    return [
        ImageSource.parse(
            s, preprocess=pre, cache=not args.no_cache, workers=args.workers, max_images=args.max_images
        )
        for s in args.source
    ]


def _out_dir(args: argparse.Namespace, command: str, *, resume: bool = False) -> Path:
    """The output folder; an existing non-empty one is refused unless --overwrite (then it is emptied) or, for
    train, --resume (then training continues from its checkpoints)."""
    out = Path(args.out) if args.out else Path("runs") / f"genprobe-{command}"
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if resume:
        if not (out / "checkpoints" / "latest").is_file():
            raise FileNotFoundError(f"--resume: {out}/checkpoints holds no checkpoint to continue from")
        return out
    if out.exists() and any(out.iterdir()):
        if not getattr(args, "overwrite", False):
            raise FileExistsError(f"{out} is not empty; pass --overwrite or choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _skipped(sources: Sequence[ImageSource]) -> dict[str, Any]:
    """Unreadable files the folder sources left out (also warned about on stderr), for the JSON result."""
    skipped = {s.name: len(s.skipped) for s in sources if s.skipped}
    return {"skipped_files": skipped} if skipped else {}


def _show(args: argparse.Namespace) -> bool | None:
    return False if args.json else None


def _emit_report(args: argparse.Namespace, report: Report, out: Path, **extra: Any) -> None:
    files = report.write(out)
    result = {
        "report": report.name,
        "title": report.title,
        "columns": report.columns,
        "rows": report.rows,
        **extra,
        "files": [str(f) for f in files],
    }
    emit(
        result,
        as_json=args.json,
        human=lambda r: (
            f"{r['title']}\n{format_table(r['columns'], r['rows'])}\nwrote {', '.join(r['files'])}"
        ),
    )


# ----------------------------------------------------------------------------------------------- subcommands


def cmd_train(args: argparse.Namespace) -> int:
    cfg = _probe_config(args)  # bad flags fail before any image is read
    sources = _sources(args)
    out = _out_dir(args, "train", resume=args.resume) if args.out else None
    tr, va, te = split_sets(sources, balanced_split(sources, _split_config(args)))
    run = train_probe(
        tr,
        va,
        cfg,
        test_set=te,
        device=args.device,
        checkpoint_dir=out / "checkpoints" if out else None,
        show_progress=_show(args),
    )
    result: dict[str, Any] = {**run.summary(), "sources": [s.name for s in sources], **_skipped(sources)}
    result["split"] = {"train_per_class": len(tr) // len(sources), "test_per_class": len(te) // len(sources)}
    if out is not None:
        run.classifier.save_pretrained(out / "classifier", overwrite=True)
        atomic_write_json(out / "metrics.json", result)
        assert run.test is not None
        confusion_report(run.test, f"test confusion ({cfg.arch}, filter {cfg.filter})").write(out)
        if not args.keep_checkpoints:
            shutil.rmtree(out / "checkpoints", ignore_errors=True)
        result["out"] = str(out)

    def human(r: dict[str, Any]) -> str:
        lo, hi = r["accuracy_ci95"]
        lines = [
            f"accuracy {r['accuracy']:.4f} (95% CI {lo:.3f}-{hi:.3f}; balanced {r['balanced_accuracy']:.4f}) "
            f"on {r['n']} test images"
        ]
        if "average_precision" in r:
            lines.append(f"average precision {r['average_precision']:.4f}")
        lines.append(format_table(["source", "accuracy"], list(r["per_class_accuracy"].items())))
        lines.append(f"steps {r['steps']} (best {r['best_step']}), {r['train_seconds']:.1f} s")
        if "out" in r:
            lines.append(f"classifier saved to {r['out']}/classifier")
        return "\n".join(lines)

    emit(result, as_json=args.json, human=human)
    return 0


def _report_command(args: argparse.Namespace, command: str, experiment, emit_keys=(), **kwargs: Any) -> int:
    """Shared body of the report subcommands: sources -> experiment -> files + one result."""
    cfg = _probe_config(args)  # bad flags fail before any image is read
    sources = _sources(args)
    out = _out_dir(args, command)
    for name, value in list(kwargs.items()):
        if callable(value):  # arguments that depend on the sources (default cutoffs)
            kwargs[name] = value(sources)
    report = experiment(
        sources,
        config=cfg,
        split=_split_config(args),
        device=args.device,
        show_progress=_show(args),
        **kwargs,
    )
    _emit_report(args, report, out, **{k: report.data.get(k) for k in emit_keys}, **_skipped(sources))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    for r in args.cutoffs or ():
        parse_filter(f"lowpass:{r}")  # a bad cutoff fails before any image is read
    cutoffs = args.cutoffs or (lambda srcs: default_cutoffs(min(srcs[0].image_shape[1:])))
    return _report_command(
        args, "sweep", frequency_sweep, ("raw_accuracy",), cutoffs=cutoffs, boundary=args.boundary
    )


def cmd_pairwise(args: argparse.Namespace) -> int:
    return _report_command(args, "pairwise", pairwise, ("matrix", "row_names"))


def cmd_multiclass(args: argparse.Namespace) -> int:
    return _report_command(args, "multiclass", multiclass, ("accuracy",))


def cmd_edges(args: argparse.Namespace) -> int:
    for f in args.filters:
        parse_filter(f)
    return _report_command(args, "edges", edges, filters=args.filters)


def cmd_scaling(args: argparse.Namespace) -> int:
    return _report_command(args, "scaling", data_scaling, train_sizes=args.train_sizes)


def cmd_robustness(args: argparse.Namespace) -> int:
    for p in args.perturbations:
        parse_perturbation(p)  # a bad perturbation fails before training, not after
    return _report_command(args, "robustness", robustness, perturbations=args.perturbations)


def cmd_spectrum(args: argparse.Namespace) -> int:
    from genprobe.plots import plot_spectra
    from genprobe.spectrum import radial_power_spectrum

    sources = _sources(args, minimum=1)
    out = _out_dir(args, "spectrum")
    spectra, radii = {}, None
    for s in sources:
        n = min(len(s), args.num_images)
        x = s.get(torch.arange(n))
        radii, p = radial_power_spectrum(x - x.mean(dim=(-2, -1), keepdim=True))
        spectra[s.name] = p.mean(dim=(0, 1))
    assert radii is not None
    rows = [[float(r), *[float(spectra[k][i]) for k in spectra]] for i, r in enumerate(radii)]
    report = Report("spectrum", "radial power spectrum (mean removed)", ["radius", *spectra], rows)
    files = report.write(out)
    files.append(plot_spectra(radii, spectra, out / "spectrum.png"))
    emit(
        {"report": "spectrum", "columns": report.columns, "rows": rows, "files": [str(f) for f in files]},
        as_json=args.json,
        human=lambda r: (
            f"{format_table(r['columns'], r['rows'][:: max(1, len(r['rows']) // 12)])}\n"
            f"wrote {', '.join(r['files'])}"
        ),
    )
    return 0


def cmd_toy(args: argparse.Namespace) -> int:
    toy = ToyConfig(size=args.size, channels=args.channels)
    if args.export:
        root = Path(args.export)
        if root.exists() and any(root.iterdir()) and not args.overwrite:
            raise FileExistsError(f"{root} is not empty; pass --overwrite or choose another folder")
        written = {}
        for pair in args.pairs:
            for s in toy_pair(pair, args.num_images, toy, seed=args.seed):
                folder = root / s.name
                shutil.rmtree(folder, ignore_errors=True)
                write_image_folder(s.get(torch.arange(len(s))), folder)
                written[s.name] = str(folder)
        emit({"exported": written, "cutoff": toy.cutoff}, as_json=args.json)
        return 0
    out = _out_dir(args, "toy")
    cfg = _probe_config(args)
    split = SplitConfig(test_per_class=args.test_per_class, val_per_class=args.val_per_class, seed=args.seed)
    report = toy_probe(
        toy,
        cfg,
        num_images=args.num_images,
        split=split,
        pairs=args.pairs,
        seed=args.seed,
        device=args.device,
        show_progress=_show(args),
    )
    checks = {f"{r[0]} {r[1]}": r[2] for r in report.rows}
    _emit_report(args, report, out, cutoff=toy.cutoff, accuracies=checks)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from genprobe.models import DistributionClassifier

    dev = resolve_device(args.device)
    clf = DistributionClassifier.from_pretrained(args.classifier, device=dev)
    c, h, w = clf.config.in_channels, *clf.config.image_size
    pre = Preprocess(size=args.size or (h if h == w else None), mode=args.resize_mode, channels=c)
    src = ImageSource.parse(args.images, preprocess=pre, workers=args.workers)
    if src.image_shape != (c, h, w):
        raise ValueError(
            f"the classifier expects images of shape {(c, h, w)}, the source gives {src.image_shape}"
        )
    probs = []
    for start in range(0, len(src), args.batch_size):
        x = src.get(torch.arange(start, min(len(src), start + args.batch_size))).to(dev)
        probs.append(clf.predict_proba(x).cpu())
    p = torch.cat(probs)
    names = clf.class_names
    counts = torch.bincount(p.argmax(1), minlength=len(names))
    result = {
        "images": len(src),
        "predicted_counts": {n: int(k) for n, k in zip(names, counts)},
        "mean_probability": {n: float(v) for n, v in zip(names, p.mean(0))},
    }
    if args.out:
        out = _out_dir(args, "predict")
        rows = [[str(f), *[float(v) for v in row]] for f, row in zip(src.paths or range(len(src)), p)]
        Report("predictions", "per-image class probabilities", ["image", *names], rows).write(out)
        result["out"] = str(out)
    emit(result, as_json=args.json)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from genprobe.bench import run_benchmark

    result = run_benchmark(
        stored_size=args.stored_size,
        crop=args.crop,
        num_images=args.num_images,
        steps=args.steps,
        repeats=args.repeats,
        workers=args.workers,
        device=args.device,
        seed=args.seed,
    )
    if args.out:
        atomic_write_json(_out_dir(args, "bench") / "bench.json", result)
    emit(
        result,
        as_json=args.json,
        human=lambda r: (
            f"training throughput: cached {r['cached_images_per_s']:.0f} img/s, uncached "
            f"{r['uncached_images_per_s']:.0f} img/s (x{r['throughput_ratio']:.2f})\n"
            f"time to {r['target_accuracy']:.0%} val accuracy: cached {r['cached_seconds_to_target']:.1f} s, "
            f"uncached {r['uncached_seconds_to_target']:.1f} s (x{r['time_to_target_ratio']:.2f})\n"
            f"device {r['device']}"
        ),
    )
    return 0


# --------------------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genprobe", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(
        name: str,
        help_: str,
        fn,
        *,
        data: bool = True,
        probe: bool = True,
        filt: bool = True,
        min_sources: int = 2,
    ):
        p = sub.add_parser(name, help=help_, description=help_)
        if data:
            _add_data_args(p, min_sources=min_sources)
        if probe:
            _add_probe_args(p, with_filter=filt)
        add_common_args(p)
        p.set_defaults(func=fn)
        return p

    p = add("train", "train one classifier over the sources and report test accuracy", cmd_train)
    p.add_argument("--keep-checkpoints", action="store_true", help="keep the training checkpoints in --out")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from --out/checkpoints (same flags)",
    )
    p = add("sweep", "accuracy vs low-/high-pass cutoff (the frequency probe)", cmd_sweep, filt=False)
    p.add_argument(
        "--cutoffs", type=_csv_floats, default=None, help="comma-separated radii (cycles per image)"
    )
    p.add_argument(
        "--boundary",
        default="circular",
        choices=["circular", "reflect"],
        help="FFT boundary: circular (the DFT's) or reflect (mirror-extended; no ringing along photo borders)",
    )
    add("pairwise", "binary accuracy for every pair of sources (a matrix)", cmd_pairwise)
    add("multiclass", "one classifier over all sources: confusion matrix", cmd_multiclass)
    p = add("edges", "accuracy on raw images vs Sobel / Canny edge maps", cmd_edges, filt=False)
    p.add_argument("--filters", type=lambda s: s.split(","), default=["none", "sobel", "canny"])
    p = add("scaling", "accuracy vs training images per class", cmd_scaling)
    p.add_argument("--train-sizes", type=_csv_ints, required=True, help="comma-separated images per class")
    p = add("robustness", "accuracy of one classifier under JPEG / resize / blur", cmd_robustness)
    p.add_argument(
        "--perturbations",
        type=lambda s: s.split(","),
        default=["none", "jpeg:95", "jpeg:75", "jpeg:50", "resize:0.5", "blur:1"],
    )
    p = add(
        "spectrum",
        "radial power spectrum of each source (plot + table)",
        cmd_spectrum,
        probe=False,
        min_sources=1,
    )
    p.add_argument("--num-images", type=int, default=256, help="images per source to average")
    p.add_argument("--overwrite", action="store_true")

    p = sub.add_parser(
        "toy",
        help="the offline toy probe (sources that differ in exactly one frequency band)",
        description="Two toy pairs: 'hf' differs only above the cutoff, 'lf' only below. Expected: hf at chance "
        "after lowpass and ~1 after highpass; lf the reverse. --export DIR writes them as PNG folders instead.",
    )
    _add_probe_args(p, with_filter=False)
    p.add_argument("--size", type=int, default=16, help="toy image size in px (default: %(default)s)")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--num-images", type=int, default=600, help="images per source")
    p.add_argument("--pairs", type=lambda s: s.split(","), default=list(PAIRS))
    p.add_argument("--test-per-class", type=int, default=200)
    p.add_argument("--val-per-class", type=int, default=50)
    p.add_argument("--export", default=None, help="write the toy sources as PNG folders here and exit")
    add_common_args(p)
    p.set_defaults(func=cmd_toy, steps=200, eval_every=50, width=16, batch_size=32)

    p = sub.add_parser("predict", help="class probabilities of a saved classifier on a folder of images")
    p.add_argument("--classifier", required=True, help="a folder written by `genprobe train` (…/classifier)")
    p.add_argument("--images", required=True, help="a folder of images or a tensor file")
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--resize-mode", default="center_crop", choices=["center_crop", "resize_crop", "resize"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--overwrite", action="store_true")
    add_common_args(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "bench", help="training throughput and time-to-accuracy with vs without the image cache"
    )
    p.add_argument("--stored-size", type=int, default=128, help="PNG size on disk")
    p.add_argument("--crop", type=int, default=32, help="centre crop the classifier sees")
    p.add_argument("--num-images", type=int, default=384)
    p.add_argument("--steps", type=int, default=30, help="steps per throughput measurement")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--overwrite", action="store_true")
    add_common_args(p)
    p.set_defaults(func=cmd_bench)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except ImportError as exc:  # a missing optional extra is a user-fixable error
        raise ValueError(str(exc)) from exc
    except RuntimeError as exc:
        if "CUDA is not available" in str(exc) or "was requested but" in str(exc):
            raise ValueError(str(exc)) from exc
        raise


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv, prog="genprobe")


if __name__ == "__main__":  # `python -m genprobe.cli` / `accelerate launch -m genprobe.cli`
    raise SystemExit(main())
