"""The probe's configuration (torch-free, so that ``genprobe --help`` builds its flags without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass

from gen_common.config import arg, validate

__all__ = ["ARCHS", "MIN_TEST_PER_CLASS", "PRETRAINABLE_HEADS", "ProbeConfig", "SmallSplitWarning"]

# Below this many test images per class the accuracy's 95% interval is wider than about +-0.15 (Wilson, at
# accuracy 0.75 over two classes): too wide to tell "near chance" from "near perfect" reliably.
MIN_TEST_PER_CLASS = 20


class SmallSplitWarning(UserWarning):
    """A split too small for its numbers to mean much: no validation set (no early stopping, no model selection),
    or fewer than :data:`MIN_TEST_PER_CLASS` test images per class (the message gives the accuracy's interval).
    The CLI prints each as one ``warning:`` line on stderr and lists them under ``warnings`` in its report."""


ARCHS = ("small_cnn", "resnet18", "resnet50", "convnext_tiny", "vit_small", "linear_probe")
# Whole-network architectures whose trunk --backbone-weights initialises (the classification head, sized for
# the sources, starts fresh): the key prefix of each one's head.
PRETRAINABLE_HEADS = {
    "resnet18": "fc.",
    "resnet50": "fc.",
    "convnext_tiny": "classifier.2.",
    "vit_small": "heads.",
}


@dataclass(frozen=True)
class ProbeConfig:
    """How one classifier is trained. Defaults suit the small CPU CNN; the paper-scale architectures want
    ``lr`` ~ 1e-4 (CNNDetection's Adam default) and thousands of steps."""

    arch: str = arg(
        "small_cnn", help=f"{', '.join(ARCHS)} or timm:<name> (random init unless --backbone-weights)"
    )
    filter: str = arg(
        "none",
        help="lowpass:R | highpass:R | bandpass:R1:R2 | gaussian-lowpass:R | gaussian-highpass:R | sobel | canny | "
        "edges | none (R in cycles per image)",
    )
    steps: int = arg(500, help="maximum optimizer steps", min=1)
    batch_size: int = arg(64, help="images per step", min=1)
    lr: float | None = arg(
        None, help="peak learning rate (default: 2e-3 for small_cnn, 1e-4 otherwise)", gt=0
    )
    weight_decay: float = arg(1e-4, help="AdamW weight decay", min=0)
    warmup_steps: int = arg(0, help="linear warmup steps", min=0)
    schedule: str = arg("cosine", help="learning-rate schedule", choices=("constant", "cosine"))
    grad_clip: float | None = arg(1.0, help="gradient-norm clip", gt=0)
    eval_every: int = arg(100, help="validation cadence in steps (early stopping)", min=1)
    patience: int | None = arg(
        5, help="early stopping after N evaluations without gain; 0 turns it off", min=0
    )
    target_accuracy: float | None = arg(
        None, help="stop as soon as the validation accuracy reaches it (default 1.0)", gt=0, max=1
    )
    hflip: bool = arg(True, flag="--flip", help="random horizontal flips (CNNDetection's augmentation)")
    train_perturb: str | None = arg(None, help="jpeg:Q | resize:S | blur:SIGMA on every training batch")
    width: int = arg(32, help="small_cnn base width", min=1)
    patch_size: int = arg(16, help="vit_small patch size", min=1)
    normalization: str = arg(
        "data",
        choices=("data", "imagenet", "clip", "none"),
        help="input standardisation: data (filtered training-set mean/std), or the statistics a pretrained trunk "
        "was trained with (imagenet / clip: use one with --backbone-weights)",
    )
    backbone: str = arg("", help="linear_probe trunk: resnet18, resnet50, convnext_tiny, vit_small")
    backbone_weights: str | None = arg(
        None,
        help="pretrained state dict (safetensors or .pt) for the linear_probe trunk, or to initialise "
        f"{', '.join(PRETRAINABLE_HEADS)} (all but the head)",
    )
    mixed_precision: str = arg("auto", choices=("auto", "no", "bf16", "fp16"), help="auto: bf16 on CUDA")
    channels_last: bool = arg(True, help="channels-last memory format on CUDA", cli=False)
    compile: bool = arg(False, help="torch.compile the network")
    prefilter: bool | str = arg(
        "auto", help="filter the training images once (auto: when they fit in 2 GiB)", cli=False
    )
    eval_batch_size: int = arg(256, help="images per evaluation batch", min=1)
    norm_samples: int = arg(
        1024, help="training images used for the standardisation statistics", min=1, cli=False
    )
    seed: int = arg(0, help="seed of the classifier's initialisation and batches", cli=False)

    def __post_init__(self) -> None:
        validate(self)
        if self.filter != "none" or self.train_perturb is not None:
            from genprobe.filters import parse_filter, parse_perturbation  # imports torch: only when needed

            parse_filter(self.filter)
            parse_perturbation(self.train_perturb)
        if self.backbone_weights and self.arch != "linear_probe" and self.arch not in PRETRAINABLE_HEADS:
            raise ValueError(
                f"--backbone-weights initialises linear_probe or {', '.join(PRETRAINABLE_HEADS)}, not --arch "
                f"{self.arch}; drop the weights or choose one of those"
            )

    @property
    def learning_rate(self) -> float:
        """``lr``, or the architecture's default (2e-3 for small_cnn, 1e-4 for the paper-scale networks)."""
        return self.lr if self.lr is not None else (2e-3 if self.arch == "small_cnn" else 1e-4)

    @property
    def early_stopping_patience(self) -> int | None:
        return self.patience or None  # 0 and None both turn early stopping off
