"""The paper's experiments over image sources (arXiv 2405.18029), each returning a :class:`Report`.

- :func:`pairwise`: one binary classifier per pair of sources -> accuracy matrix (real vs each generator, and
  generator vs generator: U-ViT-H vs DiT-XL easy, EDM2-XS vs EDM2-XXL hard in the paper).
- :func:`multiclass`: one classifier over all sources -> confusion matrix and per-class accuracy.
- :func:`frequency_sweep`: accuracy after an ideal low-pass and high-pass at each cutoff (cycles per image).
- :func:`edges`: accuracy on raw images, Sobel magnitude and Canny edge maps.
- :func:`data_scaling`: accuracy against the number of training images per class (nested subsets, one test set).
- :func:`robustness`: one classifier evaluated under JPEG / resize / blur perturbations (the detectors' checks).
- :func:`genprobe.mixing.data_mixing`: a generator refitted on real-only, mixed and replaced training data, each
  scored by how well a classifier tells its samples from real images.

A report is a table (written as JSON and CSV) plus the data for its PNG figure; :meth:`Report.write` saves all.
Sources' decoded-image caches are shared across the classifiers of an experiment.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gen_common.atomic import atomic_path, atomic_write_json
from gen_common.cli import progress as progress_bar
from gen_common.jsonio import to_jsonable
from genprobe import plotting
from genprobe.data import ImageSource, SplitConfig, balanced_split, split_sets
from genprobe.filters import parse_perturbation
from genprobe.metrics import Metrics
from genprobe.probe import ProbeConfig, ProbeRun, evaluate, train_probe, warn_small_test
from genprobe.toy import PAIRS, ToyConfig, toy_pair

__all__ = [
    "Report",
    "confusion_report",
    "data_scaling",
    "default_cutoffs",
    "edges",
    "frequency_sweep",
    "multiclass",
    "pairwise",
    "robustness",
    "run_probe",
    "toy_probe",
]


@dataclass
class Report:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    data: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(dataclasses.asdict(self))

    def write(self, out: str | Path | Callable[[str], Path]) -> list[Path]:
        """``<name>.json`` (everything), ``<name>.csv`` (the table) and ``<name>.png`` (the figure), into the
        folder ``out`` or at the paths ``out(file_name)`` gives (``RunContext.output``: its overwrite policy)."""
        if callable(out):
            path_for = out
        else:
            d = Path(out)
            d.mkdir(parents=True, exist_ok=True)
            path_for = d.joinpath
        paths = [atomic_write_json(path_for(f"{self.name}.json"), self.to_json())]
        csv_path = path_for(f"{self.name}.csv")
        with atomic_path(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(self.columns)
            w.writerows(self.rows)
        paths.append(csv_path)
        if self.data.get("kind") in ("matrix", "curves", "bars"):
            fig = self.plot(path_for(f"{self.name}.png"))
            if fig is not None:
                paths.append(fig)
        return paths

    def plot(self, path: Path) -> Path | None:
        kind = self.data.get("kind")
        if kind == "matrix":
            return plotting.plot_matrix(
                self.data["matrix"],
                self.data["row_names"],
                self.data["col_names"],
                path,
                title=self.title,
                xlabel=self.data.get("xlabel", ""),
                ylabel=self.data.get("ylabel", ""),
                vmin=self.data.get("vmin", 0.0),
                vmax=self.data.get("vmax", 1.0),
            )
        if kind == "curves":
            return plotting.plot_curves(
                self.data["x"],
                self.data["curves"],
                path,
                title=self.title,
                xlabel=self.data["xlabel"],
                hlines=self.data.get("hlines"),
                logx=self.data.get("logx", False),
            )
        if kind == "bars":
            return plotting.plot_bars(
                self.data["labels"],
                self.data["values"],
                path,
                title=self.title,
                chance=self.data.get("chance"),
            )
        return None


def run_probe(
    sources: Sequence[ImageSource],
    config: ProbeConfig,
    split: SplitConfig | None = None,
    *,
    device: torch.device | str = "auto",
    checkpoint_dir: str | Path | None = None,
    progress: bool | None = None,
) -> ProbeRun:
    """Split the sources (balanced), train one classifier, evaluate it on the test split (``run.test``)."""
    tr, va, te = split_sets(sources, balanced_split(sources, split))
    return train_probe(
        tr, va, config, test_set=te, device=device, checkpoint_dir=checkpoint_dir, progress=progress
    )


def _summary(run: ProbeRun, **extra: Any) -> dict[str, Any]:
    return {**extra, **run.summary()}


def _train_all(
    jobs: Sequence[tuple[Sequence[ImageSource], ProbeConfig, SplitConfig | None]],
    desc: str,
    device: torch.device | str,
    progress: bool | None,
) -> list[ProbeRun]:
    """One tested classifier per (sources, config, split) job, under one progress bar (the classifiers' own
    bars would flicker underneath it)."""
    runs = []
    for srcs, cfg, split in progress_bar(list(jobs), desc=desc, enabled=progress):
        run = run_probe(srcs, cfg, split, device=device, progress=False)
        assert run.test is not None
        runs.append(run)
    return runs


def pairwise(
    sources: Sequence[ImageSource],
    config: ProbeConfig | None = None,
    split: SplitConfig | None = None,
    *,
    device: torch.device | str = "auto",
    progress: bool | None = None,
) -> Report:
    """Test accuracy of a binary classifier for every pair of sources (a symmetric matrix, diagonal empty)."""
    cfg = config or ProbeConfig()
    k = len(sources)
    if k < 2:
        raise ValueError("pairwise needs at least two sources")
    names = [s.name for s in sources]
    mat: list[list[float | None]] = [[None] * k for _ in range(k)]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    done = _train_all([([sources[i], sources[j]], cfg, split) for i, j in pairs], "pairs", device, progress)
    rows, runs = [], []
    for (i, j), run in zip(pairs, done):
        mat[i][j] = mat[j][i] = run.test.accuracy
        rows.append([names[i], names[j], run.test.accuracy, run.test.average_precision, run.steps])
        runs.append(_summary(run, a=names[i], b=names[j]))
    return Report(
        "pairwise",
        f"pairwise accuracy ({cfg.arch}, filter {cfg.filter})",
        ["a", "b", "accuracy", "average_precision", "steps"],
        rows,
        {"kind": "matrix", "matrix": mat, "row_names": names, "col_names": names, "vmin": 0.5, "vmax": 1.0},
        runs,
    )


def multiclass(
    sources: Sequence[ImageSource],
    config: ProbeConfig | None = None,
    split: SplitConfig | None = None,
    *,
    device: torch.device | str = "auto",
    progress: bool | None = None,
) -> Report:
    """One classifier over all sources: confusion matrix (rows: true source, columns: predicted)."""
    cfg = config or ProbeConfig()
    run = run_probe(sources, cfg, split, device=device, progress=progress)
    assert run.test is not None
    k = len(run.test.class_names)
    report = confusion_report(
        run.test,
        f"{k}-way confusion, accuracy {run.test.accuracy:.3f} ({cfg.arch}, filter {cfg.filter})",
        name="multiclass",
    )
    report.runs = [_summary(run)]
    return report


def confusion_report(metrics: Metrics, title: str, *, name: str = "confusion") -> Report:
    """A confusion matrix as a report: counts per (true, predicted) source and per-class accuracy in the table,
    the row-normalised matrix in the figure."""
    names = metrics.class_names
    cm = metrics.confusion
    norm = [[c / max(1, sum(r)) for c in r] for r in cm]
    rows = [[names[i], *cm[i], metrics.per_class_accuracy[names[i]]] for i in range(len(names))]
    return Report(
        name,
        title,
        ["true", *[f"pred:{n}" for n in names], "class_accuracy"],
        rows,
        {
            "kind": "matrix",
            "matrix": norm,
            "row_names": names,
            "col_names": names,
            "xlabel": "predicted",
            "ylabel": "true",
            "accuracy": metrics.accuracy,
        },
    )


def default_cutoffs(size: int) -> list[float]:
    """Cutoffs for an ``size`` px image: S/16, S/8, S/4, 3S/8, S/2 cycles per image (at least 1)."""
    return sorted({max(1.0, size * f) for f in (1 / 16, 1 / 8, 1 / 4, 3 / 8, 1 / 2)})


def frequency_sweep(
    sources: Sequence[ImageSource],
    cutoffs: Sequence[float] | None = None,
    config: ProbeConfig | None = None,
    split: SplitConfig | None = None,
    *,
    include_raw: bool = True,
    boundary: str = "circular",
    device: torch.device | str = "auto",
    progress: bool | None = None,
) -> Report:
    """Accuracy vs cutoff R (cycles per image) for classifiers trained and tested on low-pass(R) and high-pass(R)
    images (the paper's frequency analysis: high-pass keeps the accuracy, low-pass loses it). ``boundary``:
    ``"circular"`` (the DFT's) or ``"reflect"`` (mirror-extended, no ringing along photo borders)."""
    cfg = config or ProbeConfig()
    size = min(sources[0].image_shape[1:])
    rs = [float(r) for r in (cutoffs if cutoffs is not None else default_cutoffs(size))]
    if not rs:
        raise ValueError("give at least one cutoff")
    jobs = [("none", None)] if include_raw else []
    suffix = "" if boundary == "circular" else f":{boundary}"
    jobs += [(f"{kind}:{r:g}{suffix}", (kind, r)) for r in rs for kind in ("lowpass", "highpass")]
    done = _train_all(
        [(sources, dataclasses.replace(cfg, filter=spec), split) for spec, _ in jobs],
        "sweep",
        device,
        progress,
    )
    acc = {spec: run.test.accuracy for (spec, _), run in zip(jobs, done)}
    runs = [_summary(run) for run in done]
    rows = [[r, acc[f"lowpass:{r:g}{suffix}"], acc[f"highpass:{r:g}{suffix}"]] for r in rs]
    chance = 1.0 / len(sources)
    hlines = {"chance": chance}
    if include_raw:
        hlines["unfiltered"] = acc["none"]
    return Report(
        "frequency_sweep",
        f"accuracy vs cutoff ({cfg.arch}; {' vs '.join(s.name for s in sources)})",
        ["cutoff", "lowpass_accuracy", "highpass_accuracy"],
        rows,
        {
            "kind": "curves",
            "x": rs,
            "curves": {"low-pass (r <= R)": [r[1] for r in rows], "high-pass (r > R)": [r[2] for r in rows]},
            "xlabel": "cutoff R (cycles per image)",
            "hlines": hlines,
            "raw_accuracy": acc.get("none"),
        },
        runs,
    )


def edges(
    sources: Sequence[ImageSource],
    filters: Sequence[str] = ("none", "sobel", "canny"),
    config: ProbeConfig | None = None,
    split: SplitConfig | None = None,
    *,
    device: torch.device | str = "auto",
    progress: bool | None = None,
) -> Report:
    """Accuracy of classifiers trained on raw images and on edge maps (the paper: edges keep the accuracy)."""
    cfg = config or ProbeConfig()
    done = _train_all(
        [(sources, dataclasses.replace(cfg, filter=spec), split) for spec in filters],
        "edges",
        device,
        progress,
    )
    rows = [[spec, run.test.accuracy, run.test.average_precision] for spec, run in zip(filters, done)]
    runs = [_summary(run) for run in done]
    return Report(
        "edges",
        f"accuracy on edge maps ({cfg.arch})",
        ["filter", "accuracy", "average_precision"],
        rows,
        {
            "kind": "bars",
            "labels": [r[0] for r in rows],
            "values": [r[1] for r in rows],
            "chance": 1 / len(sources),
        },
        runs,
    )


def data_scaling(
    sources: Sequence[ImageSource],
    train_sizes: Sequence[int],
    config: ProbeConfig | None = None,
    split: SplitConfig | None = None,
    *,
    device: torch.device | str = "auto",
    progress: bool | None = None,
) -> Report:
    """Accuracy vs training images per class; the training sets are nested and share one val and test set."""
    cfg = config or ProbeConfig()
    base = split or SplitConfig()
    sizes = sorted({int(n) for n in train_sizes})
    if not sizes or sizes[0] < 1:
        raise ValueError("train sizes must be >= 1")
    done = _train_all(
        [(sources, cfg, dataclasses.replace(base, train_per_class=n)) for n in sizes],
        "sizes",
        device,
        progress,
    )
    rows = [[n, run.test.accuracy, run.test.average_precision] for n, run in zip(sizes, done)]
    runs = [_summary(run, train_per_class=n) for n, run in zip(sizes, done)]
    return Report(
        "data_scaling",
        f"accuracy vs training-set size ({cfg.arch}, filter {cfg.filter})",
        ["train_per_class", "accuracy", "average_precision"],
        rows,
        {
            "kind": "curves",
            "x": sizes,
            "curves": {"test accuracy": [r[1] for r in rows]},
            "xlabel": "training images per class",
            "hlines": {"chance": 1 / len(sources)},
            "logx": len(sizes) > 2 and sizes[-1] / sizes[0] >= 8,
        },
        runs,
    )


def robustness(
    sources: Sequence[ImageSource],
    perturbations: Sequence[str] = ("none", "jpeg:95", "jpeg:75", "jpeg:50", "resize:0.5", "blur:1"),
    config: ProbeConfig | None = None,
    split: SplitConfig | None = None,
    *,
    device: torch.device | str = "auto",
    progress: bool | None = None,
) -> Report:
    """Train once, then test under each perturbation (JPEG needs images in [0, 1], i.e. folder sources)."""
    cfg = config or ProbeConfig()
    for p in perturbations:
        parse_perturbation(None if p == "none" else p)  # fail before training, not after
    tr, va, te = split_sets(sources, balanced_split(sources, split))
    run = train_probe(tr, va, cfg, test_set=None, device=device, progress=progress)
    rows = []
    for p in perturbations:
        m = evaluate(
            run.classifier,
            te,
            batch_size=cfg.eval_batch_size,
            device=device,
            perturb=None if p == "none" else p,
        )
        rows.append([p, m.accuracy, m.average_precision])
        if len(rows) == 1:  # the test set is evaluated here, not by train_probe: its size is checked here
            warn_small_test(m, cfg.filter)
    return Report(
        "robustness",
        f"accuracy under perturbations ({cfg.arch}, filter {cfg.filter})",
        ["perturbation", "accuracy", "average_precision"],
        rows,
        {
            "kind": "bars",
            "labels": [r[0] for r in rows],
            "values": [r[1] for r in rows],
            "chance": 1 / len(sources),
        },
        [_summary(run)],
    )


def is_chance(accuracy: float, n_test: int, classes: int = 2, sigmas: float = 4.0) -> bool:
    """Whether a test accuracy is within ``sigmas`` binomial standard errors of chance."""
    p = 1.0 / classes
    return abs(accuracy - p) <= sigmas * math.sqrt(p * (1 - p) / n_test)


def toy_probe(
    toy: ToyConfig | None = None,
    config: ProbeConfig | None = None,
    *,
    num_images: int = 600,
    split: SplitConfig | None = None,
    pairs: Sequence[str] = PAIRS,
    include_raw: bool = True,
    seed: int = 0,
    device: torch.device | str = "auto",
    progress: bool | None = None,
) -> Report:
    """The offline proof of the probe: for each toy pair, accuracy on raw, low-pass(cutoff) and high-pass(cutoff)
    images. Expected: ``hf`` at chance after the low-pass and near 1 after the high-pass; ``lf`` the reverse."""
    tcfg = toy or ToyConfig()
    cfg = config or ProbeConfig()
    r = tcfg.cutoff
    specs = (["none"] if include_raw else []) + [f"lowpass:{r:g}", f"highpass:{r:g}"]
    jobs = [(p, f) for p in pairs for f in specs]
    srcs = {p: toy_pair(p, num_images, tcfg, seed=seed) for p in pairs}
    done = _train_all(
        [(srcs[p], dataclasses.replace(cfg, filter=f), split) for p, f in jobs], "toy", device, progress
    )
    rows, runs = [], []
    for (p, f), run in zip(jobs, done):
        expected = "any" if f == "none" else ("chance" if (p == "hf") == f.startswith("lowpass") else "high")
        rows.append([p, f, run.test.accuracy, expected, run.test.n])
        runs.append(_summary(run, pair=p))
    return Report(
        "toy",
        f"toy probe ({tcfg.size}px, cutoff {r:g} cycles/image)",
        ["pair", "filter", "accuracy", "expected", "n_test"],
        rows,
        {
            "kind": "bars",
            "labels": [f"{row[0]} {row[1]}" for row in rows],
            "values": [row[2] for row in rows],
            "chance": 0.5,
            "cutoff": r,
        },
        runs,
    )
