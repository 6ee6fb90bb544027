"""The tour's demo: the paper's frequency / edge probe, offline, on bundled photos and on the ground-truth toy.

1. Toy (ground truth): pair ``hf`` differs only above the cutoff, ``lf`` only below; the probe must give chance
   after the low-pass and ~1 after the high-pass for ``hf``, the reverse for ``lf``.
2. Real photo crops (scikit-image / scikit-learn sample photos, or synthetic 1/f images without them) vs a
   resampling "generator" (area-down x2, bilinear-up x2): a small CNN separates them; accuracy vs low-/high-pass
   cutoff and on edge maps reproduces the paper's picture (arXiv 2405.18029: classifiers use edges and high
   frequencies), plus the two sources' radial power spectra.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from gen_common.cli import RunContext
from gen_common.demo import DemoContext, DemoResult, Table
from gen_common.device import num_threads
from genprobe import runs
from genprobe.config import ProbeConfig
from genprobe.filters import highpass, lowpass, sobel_edges
from genprobe.photos import demo_sources
from genprobe.plotting import plot_images, plot_spectra
from genprobe.spectrum import radial_power_spectrum
from genprobe.toy import ToyConfig


def run_demo(ctx: DemoContext) -> DemoResult:
    # The small CNN's batches are too small to gain from more threads; on a busy machine they multiply the time.
    with num_threads(1 if ctx.device.type == "cpu" and ctx.scale == "small" else None):
        return _run(ctx)


# The demo's presets: the same commands as `genprobe toy`, `genprobe sweep` and `genprobe edges`, sized per scale
# (the photo sources are in memory: they are filled in at run time).
PRESETS = {
    "small": {
        "toy": runs.ToyRun(
            probe=ProbeConfig(steps=150, eval_every=50, batch_size=32, width=16, patience=2),
            size=16, num_images=400, test_per_class=200, val_per_class=50,
        ),
        "photos": (600, 32, runs.DataConfig(test_per_class=150, val_per_class=50)),
        "probe": ProbeConfig(steps=200, eval_every=50, batch_size=32, lr=2e-3, width=16, patience=2,
                             target_accuracy=0.99),
    },
    "large": {
        "toy": runs.ToyRun(
            probe=ProbeConfig(steps=600, eval_every=50, batch_size=64, width=16, patience=2),
            size=32, num_images=1000, test_per_class=200, val_per_class=50,
        ),
        "photos": (4000, 64, runs.DataConfig(test_per_class=400, val_per_class=100)),
        "probe": ProbeConfig(arch="resnet18", steps=3000, eval_every=100, batch_size=128, lr=1e-3, width=16,
                             patience=3, target_accuracy=0.99),
    },
}  # fmt: skip


def _run(ctx: DemoContext) -> DemoResult:
    t0 = time.perf_counter()
    preset = PRESETS["large" if ctx.scale == "large" else "small"]
    run_ctx = RunContext(
        device=str(ctx.device), seed=ctx.seed, out=ctx.out_dir, overwrite=True, progress=ctx.progress
    )
    # ----- 1. the toy with a known answer
    toy_run = dataclasses.replace(
        preset["toy"], probe=dataclasses.replace(preset["toy"].probe, seed=ctx.seed)
    )
    toy_report = runs.toy(toy_run, run_ctx)
    toy = ToyConfig(size=toy_run.size, channels=toy_run.channels)
    acc = toy_report.accuracies

    # ----- 2. real photo crops vs a resampling generator
    n_images, size, data = preset["photos"]
    real, fake, photos = demo_sources(n_images, size, 3, seed=ctx.seed)
    data = dataclasses.replace(data, source=(real, fake))
    cfg = dataclasses.replace(preset["probe"], seed=ctx.seed)
    cutoffs = [size / 16, size / 8, size / 4, 3 * size / 8, size / 2]
    sweep = runs.sweep(runs.SweepRun(data, cfg, cutoffs=",".join(f"{c:g}" for c in cutoffs)), run_ctx)
    edge = runs.edges(runs.EdgesRun(data, cfg, filters="sobel,canny"), run_ctx)
    edge.rows.insert(0, ["none", sweep.data["raw_accuracy"], None])  # the raw classifier is the sweep's

    xr, xf = real.get(torch.arange(256)), fake.get(torch.arange(256))
    radii, pr = radial_power_spectrum(xr - xr.mean(dim=(-2, -1), keepdim=True))
    _, pf = radial_power_spectrum(xf - xf.mean(dim=(-2, -1), keepdim=True))
    spec_png = plot_spectra(
        radii, {"real": pr.mean(dim=(0, 1)), "generated": pf.mean(dim=(0, 1))}, ctx.path("spectrum.png")
    )
    r_mid = size / 4
    show = torch.cat([xr[:4], xf[:4]])
    examples = plot_images(
        {
            "raw": show,
            f"lowpass:{r_mid:g}": lowpass(show, r_mid),
            f"highpass:{r_mid:g}": highpass(show, r_mid),
            "sobel": sobel_edges(show),
        },
        ctx.path("examples.png"),
        title="4 real crops, then 4 generated (resampled) crops",
    )
    seconds = time.perf_counter() - t0
    lo = {r[0]: r[1] for r in sweep.rows}
    hi = {r[0]: r[2] for r in sweep.rows}
    summary = (
        f"Toy with a known answer ({toy.size}px, cutoff {toy.cutoff:g} cycles/image): hf pair "
        f"{acc[f'hf lowpass:{toy.cutoff:g}']:.2f} after low-pass (chance) vs {acc[f'hf highpass:{toy.cutoff:g}']:.2f} "
        f"after high-pass; lf pair {acc[f'lf lowpass:{toy.cutoff:g}']:.2f} vs {acc[f'lf highpass:{toy.cutoff:g}']:.2f}. "
        f"Real {size}px crops of {len(photos.images)} {photos.origin} photos vs a resampling generator: "
        f"raw accuracy {sweep.data['raw_accuracy']:.2f}; low-pass at R={cutoffs[0]:g} gives {lo[cutoffs[0]]:.2f}, "
        f"high-pass at R={cutoffs[-1]:g} still {hi[cutoffs[-1]]:.2f}; edge maps: "
        + ", ".join(f"{r[0]} {r[1]:.2f}" for r in edge.rows[1:])
        + ". As in the paper, the classifier relies on high frequencies and edges."
    )
    metrics = {
        "toy_hf_lowpass": acc[f"hf lowpass:{toy.cutoff:g}"],
        "toy_hf_highpass": acc[f"hf highpass:{toy.cutoff:g}"],
        "toy_lf_lowpass": acc[f"lf lowpass:{toy.cutoff:g}"],
        "toy_lf_highpass": acc[f"lf highpass:{toy.cutoff:g}"],
        "photos_raw_accuracy": sweep.data["raw_accuracy"],
        "photo_origin": photos.origin,
        "seconds": seconds,
    }
    tables = [
        Table(toy_report.title, ["pair", "filter", "accuracy", "expected"], [r[:4] for r in toy_report.rows]),
        Table(sweep.title, sweep.columns, sweep.rows),
        Table(edge.title, ["filter", "accuracy"], [r[:2] for r in edge.rows]),
    ]
    figures = [
        ctx.out_dir / "toy.png",
        ctx.out_dir / "frequency_sweep.png",
        ctx.out_dir / "edges.png",
        spec_png,
        examples,
    ]
    return DemoResult(
        title="genprobe: what do distribution classifiers use? (frequency and edge probes)",
        summary=summary,
        metrics=metrics,
        tables=tables,
        figures=figures,
        headline={
            "claim": "distribution classifiers rely on high frequencies and edges: accuracy survives high-pass "
            "and edge maps and drops towards chance after low-pass",
            "paper": "real vs generated nearly perfectly separable; accurate on high-pass and edge images, "
            "accuracy drops on low-pass images (ResNet-50/ConvNeXt/ViT on ImageNet-scale generators)",
            "measured": f"toy: low-pass {acc[f'hf lowpass:{toy.cutoff:g}']:.2f} (chance 0.50) vs high-pass "
            f"{acc[f'hf highpass:{toy.cutoff:g}']:.2f}; photos vs a resampler: raw {sweep.data['raw_accuracy']:.2f}, "
            f"low-pass R={cutoffs[0]:g} {lo[cutoffs[0]]:.2f}, high-pass R={cutoffs[-1]:g} {hi[cutoffs[-1]]:.2f}",
            "reproduces": acc[f"hf highpass:{toy.cutoff:g}"] - acc[f"hf lowpass:{toy.cutoff:g}"] >= 0.2
            and hi[cutoffs[-1]] > lo[cutoffs[0]],
            "reason": "the direction is reproduced on a toy with a known answer and a resampling generator on "
            "bundled photos; no diffusion-model samples exist offline, so the paper's accuracies are not",
        },
        captions={
            "toy.png": "Toy with a known answer: the pair that differs only in high frequencies is at chance "
            "after low-pass and separable after high-pass.",
            "frequency_sweep.png": "Accuracy vs cutoff radius: low-pass falls towards chance as the cutoff "
            "shrinks; high-pass stays high.",
            "edges.png": "Accuracy on edge maps (Sobel, Canny) stays close to the raw images'.",
            "spectrum.png": "Radial power spectra of real and generated crops: the gap sits at high frequencies.",
            "examples.png": "4 real crops, then 4 generated, raw and filtered.",
        },
    )
