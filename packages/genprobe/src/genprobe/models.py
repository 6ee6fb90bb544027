"""Distribution classifiers: the paper's architectures trained from scratch, a small CPU CNN, and linear probes.

The paper (arXiv 2405.18029) trains ResNet-50, ConvNeXt and ViT-S from scratch to tell image sources apart, and
linear probes on frozen self-supervised features. Here every architecture is built with ``weights=None``
(nothing downloads): torchvision's ResNet-50 / ResNet-18 / ConvNeXt-T, a ViT-S/16 assembled from torchvision's
``VisionTransformer`` (12 layers, 6 heads, width 384, MLP 1536: DeiT-S's shape), any timm model by name
(``timm:<name>``, extra ``genprobe[timm]``), a small CNN that trains in seconds on a CPU, and a linear head on a
frozen feature extractor (a torchvision trunk whose weights you load, or any module you pass).

:class:`DistributionClassifier` = probe filter -> standardisation -> network, so a saved classifier applies the
filter it was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gen_common.pretrained import PretrainedMixin
from genprobe.config import ARCHS
from genprobe.filters import ImageFilter

__all__ = [
    "ARCHS",
    "ClassifierConfig",
    "DistributionClassifier",
    "LinearProbe",
    "SmallCNN",
    "Standardize",
    "build_network",
    "feature_extractor",
]

_BACKBONES = ("resnet18", "resnet50", "convnext_tiny", "vit_small")
_NORMS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
}


@dataclass(frozen=True)
class ClassifierConfig:
    arch: str = "small_cnn"  # one of ARCHS or "timm:<name>"
    num_classes: int = 2
    in_channels: int = 3  # channels of the images given to forward (before the filter)
    image_size: tuple[int, int] = (32, 32)
    filter: str = "none"  # a genprobe.filters spec, applied inside forward
    class_names: tuple[str, ...] = ()
    width: int = 32  # small_cnn base width
    patch_size: int = 16  # vit_small; smaller images need a smaller patch
    backbone: str = ""  # linear_probe: a torchvision trunk name, or "custom" (a module you pass)
    normalization: str = "data"  # data (training-set mean/std), imagenet, clip or none

    def __post_init__(self) -> None:
        if self.arch not in ARCHS and not self.arch.startswith("timm:"):
            raise ValueError(f"unknown arch {self.arch!r}: use one of {', '.join(ARCHS)} or timm:<name>")
        if self.num_classes < 2:
            raise ValueError("a distribution classifier needs at least two classes")
        if self.normalization not in ("data", "none", *_NORMS):
            raise ValueError(f"unknown normalization {self.normalization!r}: data, imagenet, clip or none")
        if self.arch == "linear_probe" and not self.backbone:
            raise ValueError(f"linear_probe needs a backbone: one of {', '.join(_BACKBONES)} or 'custom'")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError("class_names must have num_classes entries")


class Standardize(nn.Module):
    """(x - mean) / std per channel; the statistics are buffers saved with the classifier."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    def set(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype).reshape(-1))
        self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype).reshape(-1).clamp_min(1e-8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean[:, None, None].to(x.dtype)) / self.std[:, None, None].to(x.dtype)


class SmallCNN(nn.Module):
    """Three 3x3 conv-BN-ReLU stages (the first two stride 2), global average pooling, a linear head.

    Small enough to train in seconds on a CPU at 16-64 px. The first convolution sees full-resolution pixels
    before it subsamples, so the highest frequencies still reach it; ReLU + pooling let it measure band energy,
    which a linear model cannot.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        w = width

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
            )

        self.features = nn.Sequential(block(in_channels, w, 2), block(w, 2 * w, 2), block(2 * w, 4 * w, 1))
        self.head = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(-2, -1)))


def _vit_small(image_size: int, patch_size: int, num_classes: int, in_channels: int) -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer

    if image_size % patch_size:
        raise ValueError(
            f"vit_small needs the image size ({image_size}) to be a multiple of the patch size ({patch_size});"
            " use --size or --patch-size"
        )
    vit = VisionTransformer(
        image_size=image_size,
        patch_size=patch_size,
        num_layers=12,
        num_heads=6,
        hidden_dim=384,
        mlp_dim=1536,
        num_classes=num_classes,
    )
    if in_channels != 3:
        vit.conv_proj = nn.Conv2d(in_channels, 384, patch_size, patch_size)
    return vit


def build_network(
    arch: str,
    num_classes: int,
    in_channels: int,
    image_size: tuple[int, int],
    *,
    width: int = 32,
    patch_size: int = 16,
) -> nn.Module:
    """A randomly initialised classifier network (weights=None: nothing downloads)."""
    import torchvision.models as tvm

    if arch == "small_cnn":
        return SmallCNN(in_channels, num_classes, width)
    if arch in ("resnet18", "resnet50"):
        net = getattr(tvm, arch)(weights=None, num_classes=num_classes)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        return net
    if arch == "convnext_tiny":
        if min(image_size) < 32:
            raise ValueError("convnext_tiny downsamples 32x: give images of at least 32 px")
        net = tvm.convnext_tiny(weights=None, num_classes=num_classes)
        if in_channels != 3:
            net.features[0][0] = nn.Conv2d(in_channels, 96, 4, 4)
        return net
    if arch == "vit_small":
        if image_size[0] != image_size[1]:
            raise ValueError(f"vit_small needs square images, got {image_size}")
        return _vit_small(image_size[0], patch_size, num_classes, in_channels)
    if arch.startswith("timm:"):
        try:
            import timm
        except ImportError as exc:
            raise ImportError('timm architectures need the extra: pip install "genprobe[timm]"') from exc
        return timm.create_model(arch[5:], pretrained=False, num_classes=num_classes, in_chans=in_channels)
    raise ValueError(f"unknown arch {arch!r}: use one of {', '.join(ARCHS)} or timm:<name>")


def feature_extractor(
    name: str, image_size: tuple[int, int] = (224, 224), patch_size: int = 16
) -> tuple[nn.Module, int]:
    """A torchvision trunk without its classification head, and its feature width (load weights into it)."""
    import torchvision.models as tvm

    if name in ("resnet18", "resnet50"):
        net = getattr(tvm, name)(weights=None)
        dim = net.fc.in_features
        net.fc = nn.Identity()
    elif name == "convnext_tiny":
        net = tvm.convnext_tiny(weights=None)
        dim = net.classifier[2].in_features
        net.classifier[2] = nn.Identity()
    elif name == "vit_small":
        net = _vit_small(image_size[0], patch_size, 1000, 3)
        dim = 384
        net.heads = nn.Identity()
    else:
        raise ValueError(f"unknown backbone {name!r}: use one of {', '.join(_BACKBONES)}")
    return net, dim


class LinearProbe(nn.Module):
    """A linear head on a frozen feature extractor (UnivFD's recipe: frozen features + one linear layer).

    The backbone never trains: its parameters have ``requires_grad=False`` and it stays in eval mode (frozen
    BatchNorm statistics) even when the probe is put in train mode. One-channel inputs (edge maps) are repeated to
    three channels for trunks that expect RGB.
    """

    def __init__(
        self, backbone: nn.Module, num_classes: int, feature_dim: int | None = None, in_channels: int = 3
    ) -> None:
        super().__init__()
        self.backbone = backbone
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone.eval()
        self.repeat = in_channels == 1
        if feature_dim is None:
            feature_dim = self._infer_dim()
        self.head = nn.Linear(feature_dim, num_classes)

    def _infer_dim(self) -> int:
        with torch.no_grad():
            out = self.backbone(torch.zeros(1, 3, 64, 64))
        return int(out.reshape(1, -1).shape[1])

    def train(self, mode: bool = True) -> LinearProbe:
        super().train(mode)
        self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.repeat and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        with torch.no_grad():
            feats = self.backbone(x)
        return self.head(feats.reshape(feats.shape[0], -1).float())


class DistributionClassifier(PretrainedMixin, nn.Module):
    """filter -> standardise -> network; outputs (N, num_classes) logits. ``save_pretrained`` /
    ``from_pretrained`` keep the filter, the normalisation statistics and the class names with the weights."""

    config_class = ClassifierConfig

    def __init__(self, config: ClassifierConfig, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.filter = ImageFilter(config.filter)
        c = self.filter.out_channels(config.in_channels)
        self.norm = Standardize(c)
        if config.normalization in _NORMS:
            mean, std = _NORMS[config.normalization]
            if c == 1:
                mean, std = (sum(mean) / 3,), (sum(std) / 3,)
            self.norm.set(torch.tensor(mean), torch.tensor(std))
        if config.arch == "linear_probe":
            if backbone is None:
                if config.backbone == "custom":
                    raise ValueError(
                        "this probe uses a custom feature extractor: build it with "
                        "DistributionClassifier(config, backbone=your_module), then load the weights"
                    )
                backbone, dim = feature_extractor(config.backbone, config.image_size, config.patch_size)
            else:
                dim = None
            self.net = LinearProbe(backbone, config.num_classes, dim, in_channels=c)
        else:
            self.net = build_network(
                config.arch,
                config.num_classes,
                c,
                tuple(config.image_size),
                width=config.width,
                patch_size=config.patch_size,
            )

    @property
    def class_names(self) -> list[str]:
        return list(self.config.class_names) or [str(i) for i in range(self.config.num_classes)]

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """What the network sees: the filtered image (before standardisation)."""
        return self.filter(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"expected (N, {self.config.in_channels}, H, W) images, got shape {tuple(x.shape)}"
            )
        return self.net(self.norm(self.filter(x)))

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self(x).float(), dim=-1)
