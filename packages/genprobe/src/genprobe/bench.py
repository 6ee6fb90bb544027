"""Benchmark of the decoded-image cache: training throughput (images/s) and time to the toy's target accuracy,
with the cache against the same loop decoding every PNG on every step, in one run.

The data are the toy's ``hf`` pair exported as PNG folders (so decoding is real Pillow work), read back through
:meth:`ImageSource.from_folder` with ``cache=True`` (candidate) and ``cache=False`` (baseline).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import torch

from gen_common.bench import compare
from gen_common.device import device_summary, resolve_device
from genprobe.data import ImageSource, Preprocess, SplitConfig, balanced_split, split_sets, write_image_folder
from genprobe.probe import ProbeConfig, train_probe
from genprobe.toy import ToyConfig, toy_pair

__all__ = ["run_benchmark"]


def run_benchmark(
    *,
    stored_size: int = 128,
    crop: int = 32,
    channels: int = 3,
    num_images: int = 384,
    steps: int = 30,
    batch_size: int = 64,
    width: int = 16,
    target: float = 0.9,
    max_steps: int = 300,
    repeats: int = 3,
    workers: int = 1,
    device: torch.device | str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Throughput over ``steps`` training steps (median of ``repeats``, warm cache) and the wall time until the
    validation accuracy reaches ``target`` (cold cache: a fresh source), cached vs uncached.

    The PNGs are stored at ``stored_size`` px and centre-cropped to ``crop`` px, as real datasets are stored
    larger than a probe's input: decoding is then a real share of each step.
    """
    dev = resolve_device(device)
    size = crop
    toy = ToyConfig(size=stored_size, channels=channels)
    split = SplitConfig(
        test_per_class=min(128, num_images // 4), val_per_class=min(64, num_images // 8), seed=seed
    )
    base = ProbeConfig(
        steps=steps, batch_size=batch_size, width=width, patience=None, eval_every=max(1, steps), seed=seed
    )
    with tempfile.TemporaryDirectory(prefix="genprobe-bench-") as tmp:
        roots = []
        for src in toy_pair("hf", num_images, toy, seed=seed):
            root = Path(tmp) / src.name
            write_image_folder(src.get(torch.arange(len(src))), root)
            roots.append(root)
        pre = Preprocess(size=crop, mode="center_crop", channels=channels)

        def sets(cache: bool):
            srcs = [ImageSource.from_folder(r, preprocess=pre, cache=cache, workers=workers) for r in roots]
            return split_sets(srcs, balanced_split(srcs, split))

        cached, uncached = sets(True), sets(False)

        def fit(data, cfg: ProbeConfig):
            tr, va, _ = data
            return train_probe(tr, va, cfg, device=dev, progress=False)

        thr = compare(
            lambda: fit(uncached, base), lambda: fit(cached, base), repeats=repeats, warmup=1, device=dev
        )
        imgs = steps * batch_size
        to_target = dataclasses.replace(
            base, steps=max_steps, patience=None, target_accuracy=target, eval_every=10
        )
        runs = {name: fit(sets(cache), to_target) for name, cache in (("uncached", False), ("cached", True))}
    out: dict[str, Any] = {
        "device": device_summary(dev),
        "stored_size": stored_size,
        "image_size": size,
        "channels": channels,
        "images_per_source": num_images,
        "batch_size": batch_size,
        "throughput_steps": steps,
        "uncached_images_per_s": imgs / thr.baseline_s,
        "cached_images_per_s": imgs / thr.candidate_s,
        "throughput_ratio": thr.ratio,
        "target_accuracy": target,
    }
    for name, run in runs.items():
        best = max((v["accuracy"] for v in run.val_history), default=float("nan"))
        out[f"{name}_seconds_to_target"] = run.train_seconds if best >= target else float("nan")
        out[f"{name}_steps_to_target"] = run.steps if best >= target else None
    out["time_to_target_ratio"] = out["uncached_seconds_to_target"] / out["cached_seconds_to_target"]
    return out
