"""Train and evaluate one distribution classifier (the unit every experiment of arXiv 2405.18029 repeats).

Training runs through ``gen_common.training.train`` (accelerate when installed, bf16 autocast on CUDA, AdamW,
warmup + cosine, gradient clipping, atomic checkpoints, exact resume). Early stopping is built on top of it: the
run advances ``eval_every`` steps at a time (``stop_after``), each chunk resuming exactly from the last atomic
checkpoint, and stops when the validation accuracy has not improved for ``patience`` evaluations; the best
weights are restored. The test split is read only once, at the end.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gen_common.checkpoint import load_state_dict
from gen_common.device import autocast, resolve_device
from gen_common.seeding import make_generator, rand, randint, split_seed
from gen_common.training import TrainConfig, train
from genprobe.config import MIN_TEST_PER_CLASS, PRETRAINABLE_HEADS, ProbeConfig, SmallSplitWarning
from genprobe.data import ImageSource, LabeledSet
from genprobe.filters import parse_filter, parse_perturbation
from genprobe.metrics import Metrics, compute_metrics
from genprobe.models import ClassifierConfig, DistributionClassifier

__all__ = [
    "ProbeConfig",
    "ProbeRun",
    "SmallSplitWarning",
    "evaluate",
    "predict_logits",
    "train_probe",
    "warn_small_test",
]


@dataclass
class ProbeRun:
    classifier: DistributionClassifier
    config: ProbeConfig
    steps: int
    history: list[dict[str, float]]
    val_history: list[dict[str, float]] = field(default_factory=list)
    best_step: int | None = None
    early_stopped: bool = False
    train_seconds: float = 0.0
    images_per_second: float = 0.0
    test: Metrics | None = None
    train_images: int = 0  # size of the training set (all classes)
    val_images: int = 0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "arch": self.config.arch,
            "filter": self.config.filter,
            "steps": self.steps,
            "train_images": self.train_images,
            "val_images": self.val_images,
            "best_step": self.best_step,
            "early_stopped": self.early_stopped,
            "train_seconds": self.train_seconds,
            "train_images_per_second": self.images_per_second,
        }
        if self.val_history:
            out["best_val_accuracy"] = max(v["accuracy"] for v in self.val_history)
        if self.test is not None:
            out.update(self.test.as_dict())
        return out


def _mp_dtype(config: ProbeConfig, device: torch.device) -> torch.dtype | None:
    mp = config.mixed_precision
    if mp == "auto":
        mp = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "no"
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mp)


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    data: LabeledSet,
    *,
    batch_size: int = 256,
    device: torch.device | str = "auto",
    perturb: str | None = None,
    amp_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels, logits) of every image of ``data``; ``perturb`` (jpeg:Q, resize:S, blur:SIGMA) is applied first."""
    dev = resolve_device(device)
    pert = parse_perturbation(perturb)
    was_training = model.training
    model.eval()
    labels, logits = [], []
    for x, y in data.batches(batch_size):
        if pert is not None:
            x = pert(x)
        x = x.to(dev, non_blocking=True)
        with autocast(dev, amp_dtype):
            out = model(x)
        logits.append(out.float().cpu())
        labels.append(y)
    model.train(was_training)
    return torch.cat(labels), torch.cat(logits)


def evaluate(
    model: DistributionClassifier,
    data: LabeledSet,
    *,
    batch_size: int = 256,
    device: torch.device | str = "auto",
    perturb: str | None = None,
    amp_dtype: torch.dtype | None = None,
) -> Metrics:
    """Accuracy, balanced and per-class accuracy, confusion matrix (and AP for two classes) on ``data``."""
    labels, logits = predict_logits(
        model, data, batch_size=batch_size, device=device, perturb=perturb, amp_dtype=amp_dtype
    )
    m = compute_metrics(labels, logits, data.class_names)
    if perturb:
        m.extra["perturbation"] = perturb
    return m


@torch.no_grad()
def _fit_standardization(
    model: DistributionClassifier, data: LabeledSet, n: int, seed: int, device: torch.device
) -> None:
    """Per-channel mean/std of the *filtered* training images: a high-pass image has a tiny variance, and an
    unscaled input would make the learning rate mean something different for every filter."""
    g = make_generator(split_seed(seed, 0x5EED))
    rows = torch.randperm(len(data), generator=g)[: max(2, n)]
    x, _ = data.batch(rows)
    f = model.filter(x.to(device)).double()
    mean = f.mean(dim=(0, 2, 3))
    std = f.std(dim=(0, 2, 3))
    model.norm.set(mean, std)


def _load_backbone_weights(model: DistributionClassifier, config: ProbeConfig) -> None:
    """Pretrained weights into the linear probe's frozen trunk, or into a whole network but its head."""
    sd = load_state_dict(config.backbone_weights)
    if config.arch == "linear_probe":
        missing, unexpected = model.net.backbone.load_state_dict(sd, strict=False)
        if unexpected or len(missing) == len(model.net.backbone.state_dict()):
            raise ValueError(
                f"{config.backbone_weights} does not fit a {config.backbone} trunk "
                f"({len(missing)} missing, {len(unexpected)} unexpected keys)"
            )
        return
    head = PRETRAINABLE_HEADS[config.arch]
    own = model.net.state_dict()
    body = {k: v for k, v in sd.items() if not k.startswith(head)}
    missing = [k for k in own if not k.startswith(head) and k not in body]
    unexpected = [k for k in body if k not in own]
    shapes = [k for k in body if k in own and tuple(body[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        first = (shapes or missing or unexpected)[0]
        raise ValueError(
            f"{config.backbone_weights} does not fit a {config.arch} network ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(shapes)} mis-shaped keys, e.g. {first}); the weights must be a "
            f"torchvision {config.arch} state dict for the same input channels and image size"
        )
    model.net.load_state_dict(body, strict=False)


def _build(config: ProbeConfig, data: LabeledSet, backbone: nn.Module | None) -> DistributionClassifier:
    c, h, w = data.image_shape
    ccfg = ClassifierConfig(
        arch=config.arch,
        num_classes=len(data.sources),
        in_channels=c,
        image_size=(h, w),
        filter=str(parse_filter(config.filter)),
        class_names=tuple(data.class_names),
        width=config.width,
        patch_size=config.patch_size,
        backbone=("custom" if backbone is not None else config.backbone)
        if config.arch == "linear_probe"
        else "",
        normalization=config.normalization,
    )
    # Initialise from the config's seed (same classifier for the same seed) without touching the caller's RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(split_seed(config.seed, 0x1417))
        model = DistributionClassifier(ccfg, backbone=backbone)
    if backbone is None and config.backbone_weights:
        _load_backbone_weights(model, config)
    return model


@contextlib.contextmanager
def _work_dir(out_dir: str | Path | None, need: bool) -> Iterator[Path | None]:
    """The checkpoint folder: the caller's, a temporary one when early stopping needs one, or none."""
    if out_dir is not None or not need:
        yield Path(out_dir) if out_dir is not None else None
        return
    with tempfile.TemporaryDirectory(prefix="genprobe-") as tmp:
        yield Path(tmp)


def _prefiltered(
    model: DistributionClassifier, data: LabeledSet, device: torch.device, batch_size: int
) -> LabeledSet:
    """The filtered images of ``data``, computed once (CPU float32), as a new labelled set."""
    parts = []
    with torch.no_grad():
        for x, _ in data.batches(batch_size):
            parts.append(model.filter(x.to(device)).float().cpu())
    xf = torch.cat(parts)
    sources = [ImageSource.from_tensor(xf[data.labels == k], s.name) for k, s in enumerate(data.sources)]
    return LabeledSet(sources, [torch.arange(len(s)) for s in sources])


def _use_prefilter(cfg: ProbeConfig, model: DistributionClassifier, sets: list[LabeledSet]) -> bool:
    if model.filter.spec.kind == "none" or cfg.train_perturb or cfg.prefilter is False:
        return False
    if cfg.prefilter is True:
        return True
    c, h, w = sets[0].image_shape
    nbytes = sum(len(s) for s in sets) * model.filter.out_channels(c) * h * w * 4
    return nbytes <= 2**31


def train_probe(
    train_set: LabeledSet,
    val_set: LabeledSet | None,
    config: ProbeConfig | None = None,
    *,
    test_set: LabeledSet | None = None,
    device: torch.device | str = "auto",
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    backbone: nn.Module | None = None,
    progress: bool | None = None,
) -> ProbeRun:
    """Train a :class:`DistributionClassifier` on ``train_set`` (labels = source positions).

    The probe filter is part of the classifier. When it is deterministic and the filtered training and validation
    images fit in 2 GiB (``config.prefilter="auto"``), they are filtered once and the network trains on the
    filtered copies (flips commute with the radial FFT filters and Sobel; Canny's are nearly symmetric), which
    saves recomputing e.g. Canny's hysteresis on every batch. The test set always goes through the full
    classifier (raw image -> filter -> network).

    Args:
        val_set: drives early stopping (``config.patience`` / ``target_accuracy``); None trains all steps.
        test_set: evaluated once at the end (``run.test``).
        checkpoint_dir: atomic training checkpoints (``step-XXXXXXXX`` + ``latest``), resumed when ``resume``;
            a temporary folder when None and early stopping needs one.
        backbone: a frozen feature extractor of your own for ``arch="linear_probe"``.
    """
    cfg = config or ProbeConfig()
    if val_set is None or len(val_set) == 0:
        val_set = None
        warnings.warn(
            f"no validation set (filter {cfg.filter}): the classifier trains all {cfg.steps} steps with no early "
            "stopping and no choice of the best step; hold out images for it (--val-per-class N)",
            SmallSplitWarning,
            stacklevel=2,
        )
    dev = resolve_device(device)
    model = _build(cfg, train_set, backbone)
    model.to(dev)
    if cfg.normalization == "data":  # imagenet / clip / none keep the statistics the config fixed
        _fit_standardization(model, train_set, cfg.norm_samples, cfg.seed, dev)
    channels_last = dev.type == "cuda" and cfg.channels_last
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile:
        model.net.compile()
    # `trainee` is what the optimizer sees: the whole classifier, or norm + network on pre-filtered images.
    trainee: nn.Module = model
    if _use_prefilter(cfg, model, [train_set] + ([val_set] if val_set is not None else [])):
        train_set = _prefiltered(model, train_set, dev, cfg.eval_batch_size)
        val_set = _prefiltered(model, val_set, dev, cfg.eval_batch_size) if val_set is not None else None
        trainee = nn.Sequential(model.norm, model.net)
    pert = parse_perturbation(cfg.train_perturb)
    n = len(train_set)
    n_val = len(val_set) if val_set is not None else 0

    def batch_fn(step: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        rows = randint(0, n, (cfg.batch_size,), gen)
        x, y = train_set.batch(rows)
        if cfg.hflip:
            flip = rand((x.shape[0],), gen) < 0.5
            x[flip] = x[flip].flip(-1)
        if pert is not None:
            x = pert(x)
        return x, y

    def loss_fn(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], gen: torch.Generator):
        x, y = batch
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = m(x)
        loss = F.cross_entropy(logits.float(), y)
        return loss, {"acc": float((logits.argmax(1) == y).float().mean())}

    tcfg = TrainConfig(
        steps=cfg.steps,
        lr=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps,
        schedule=cfg.schedule,  # type: ignore[arg-type]
        grad_clip=cfg.grad_clip,
        mixed_precision=cfg.mixed_precision,  # type: ignore[arg-type]
        log_every=min(cfg.eval_every, 50),
        # With a checkpoint folder, a preempted run can resume from its last evaluation point.
        checkpoint_every=cfg.eval_every if checkpoint_dir is not None else 0,
        seed=cfg.seed,
    )
    amp = _mp_dtype(cfg, dev)
    patience = cfg.early_stopping_patience
    early = (patience is not None or cfg.target_accuracy is not None) and val_set is not None
    target = cfg.target_accuracy if cfg.target_accuracy is not None else 1.0
    val_history: list[dict[str, float]] = []
    best_acc, best_state, best_step, bad, stopped = -1.0, None, None, 0, False
    t0 = time.perf_counter()
    steps_done, history, start_step = 0, [], None
    with _work_dir(checkpoint_dir, early) as work:
        while True:
            res = train(
                trainee,
                loss_fn,
                batch_fn,
                tcfg,
                out_dir=work,
                resume=resume or start_step is not None,
                device=dev,
                progress=progress,
                stop_after=cfg.eval_every if early else None,
            )
            # accelerate wraps forward for mixed precision on every prepare(); drop the wrapper so chunks do not
            # nest it (the class's forward is the same computation; evaluation sets its own autocast).
            trainee.__dict__.pop("forward", None)
            if start_step is None:
                start_step = res.resumed_from
            history, steps_done = res.history, res.steps
            if not early:
                break
            assert val_set is not None
            acc = evaluate(
                trainee, val_set, batch_size=cfg.eval_batch_size, device=dev, amp_dtype=amp
            ).accuracy
            val_history.append({"step": float(steps_done), "accuracy": acc})
            if acc > best_acc:
                best_acc, best_step, bad = acc, steps_done, 0
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            else:
                bad += 1
            if steps_done >= cfg.steps:
                break
            if (patience is not None and bad >= patience) or best_acc >= target:
                stopped = True
                break
    seconds = time.perf_counter() - t0
    if best_state is not None and best_step != steps_done:
        model.load_state_dict(best_state)
    model.eval()
    trained = max(0, steps_done - (start_step or 0))
    run = ProbeRun(
        classifier=model,
        config=cfg,
        steps=steps_done,
        history=history,
        val_history=val_history,
        best_step=best_step if early else steps_done,
        early_stopped=stopped,
        train_seconds=seconds,
        images_per_second=trained * cfg.batch_size / seconds if seconds > 0 else 0.0,
        train_images=n,
        val_images=n_val,
    )
    if test_set is not None:
        run.test = evaluate(model, test_set, batch_size=cfg.eval_batch_size, device=dev, amp_dtype=amp)
        warn_small_test(run.test, cfg.filter)
    return run


def warn_small_test(metrics: Metrics, what: str = "none", minimum: int = MIN_TEST_PER_CLASS) -> bool:
    """Warn (:class:`SmallSplitWarning`, with the accuracy's 95% interval) when some class has fewer than
    ``minimum`` test images; returns whether it warned."""
    counts = [sum(row) for row in metrics.confusion]
    fewest = min(counts) if counts else 0
    if fewest >= minimum:
        return False
    lo, hi = metrics.accuracy_ci95 or (float("nan"), float("nan"))
    warnings.warn(
        f"only {fewest} test images per class (filter {what}; {metrics.n} in all): accuracy {metrics.accuracy:.3f} "
        f"has a 95% interval of {lo:.3f}-{hi:.3f}; use at least {minimum} per class (--test-per-class)",
        SmallSplitWarning,
        stacklevel=3,
    )
    return True
