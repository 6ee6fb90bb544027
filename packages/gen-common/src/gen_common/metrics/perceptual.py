"""LPIPS (Zhang et al. 2018) through the ``lpips`` package, offline.

The ``lpips`` package would fetch the ImageNet backbone from torchvision's servers; here the backbone is built
random (``pnet_rand=True``) and filled with weights the user has — torchvision's ``alexnet`` / ``vgg16`` /
``squeezenet1_1`` state dict as ``.safetensors`` (or ``.pth``, read with ``weights_only=True``), or a state
dict already in memory. The linear heads calibrated on human judgements ship inside the ``lpips`` wheel
(``weights/v0.1/<net>.pth``) and are read with ``weights_only=True`` too. Nothing pickled is ever run.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Literal

import torch

from gen_common.metrics._checks import images4d, require

__all__ = ["load_lpips", "lpips"]

NETS = ("alex", "vgg", "squeeze")
_TV_NAME = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}


def _read(weights: Any, what: str) -> dict[str, torch.Tensor]:
    if isinstance(weights, dict):
        return dict(weights)
    from gen_common.checkpoint import load_state_dict

    p = Path(weights).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"no {what} at {p}")
    return load_state_dict(p)


def _backbone_state(state: dict[str, torch.Tensor], slice_of: dict[str, str]) -> dict[str, torch.Tensor]:
    """torchvision keys ``features.{i}.*`` (or lpips' ``[net.]slice{k}.{i}.*``) → lpips' ``slice{k}.{i}.*``."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.").removeprefix("net.")
        if m := re.fullmatch(r"features\.(\d+)\.(.+)", key):
            if (
                m.group(1) in slice_of
            ):  # layers past the last slice (e.g. alexnet's final max-pool) hold nothing
                out[f"{slice_of[m.group(1)]}.{m.group(1)}.{m.group(2)}"] = value
        elif re.fullmatch(r"slice\d+\..+", key):
            out[key] = value
        # anything else (classifier.*) is not part of LPIPS
    return out


def load_lpips(
    backbone_weights: str | os.PathLike[str] | dict[str, torch.Tensor],
    net: Literal["alex", "vgg", "squeeze"] = "alex",
    lin_weights: str | os.PathLike[str] | dict[str, torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
) -> Any:
    """An ``lpips.LPIPS`` module (eval mode, no gradients) with the user's backbone weights and the bundled
    (or given) v0.1 linear heads."""
    lpips_pkg = require("lpips", "LPIPS")
    if net not in NETS:
        raise ValueError(f"unknown LPIPS backbone {net!r}: use one of {', '.join(NETS)}")
    with warnings.catch_warnings():
        # lpips asks torchvision for `pretrained=False`, which torchvision deprecates in favour of weights=None
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        model = lpips_pkg.LPIPS(pretrained=False, net=net, version="0.1", pnet_rand=True, verbose=False)
    if lin_weights is None:
        lin_weights = Path(lpips_pkg.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    lin = {k: v for k, v in _read(lin_weights, "LPIPS linear weights").items() if re.match(r"lin\d+\.", k)}
    expected_lin = {k for k in model.state_dict() if re.match(r"lin\d+\.", k)}
    if set(lin) != expected_lin:
        raise ValueError(f"{lin_weights} does not hold LPIPS v0.1 linear heads for {net!r}")
    slice_of = {idx: name for name, mod in model.net.named_children() for idx, _ in mod.named_children()}
    backbone = _backbone_state(_read(backbone_weights, f"{_TV_NAME[net]} weights"), slice_of)
    missing = set(model.net.state_dict()) - set(backbone)
    if missing:
        raise ValueError(
            f"the backbone weights lack {len(missing)} tensors of torchvision's {_TV_NAME[net]} "
            f"(e.g. {sorted(missing)[0]}): pass its state dict (features.* keys)"
        )
    try:
        model.net.load_state_dict({k: backbone[k] for k in model.net.state_dict()})
        model.load_state_dict(lin, strict=False)
    except RuntimeError as exc:  # shape mismatch: another architecture's weights
        raise ValueError(f"the weights do not fit LPIPS-{net}: {str(exc).splitlines()[-1].strip()}") from exc
    model.requires_grad_(False)
    return model.eval().to(device)


@torch.no_grad()
def lpips(
    images1: Any,
    images2: Any,
    model: Any = None,
    *,
    backbone_weights: str | os.PathLike[str] | dict[str, torch.Tensor] | None = None,
    net: Literal["alex", "vgg", "squeeze"] = "alex",
    reduction: Literal["none", "mean"] = "none",
) -> torch.Tensor:
    """LPIPS distance between image pairs (N, 3, H, W) in [0, 1]: per pair (N,) or its mean.

    Pass ``model`` (from `load_lpips`, reused across calls) or ``backbone_weights`` (built for this call).
    """
    x, y = images4d(images1, "images1"), images4d(images2, "images2")
    if x.shape != y.shape:
        raise ValueError(f"image batches differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.min() < 0 or x.max() > 1 or y.min() < 0 or y.max() > 1:
        raise ValueError("images must be in [0, 1]")
    if reduction not in ("none", "mean"):
        raise ValueError(f"reduction is 'none' or 'mean', got {reduction!r}")
    if model is None:
        if backbone_weights is None:
            raise ValueError(
                f"LPIPS needs ImageNet weights for its {_TV_NAME.get(net, net)} backbone and nothing is downloaded: "
                "pass backbone_weights=<torchvision state dict, .safetensors> or model=load_lpips(...)"
            )
        model = load_lpips(backbone_weights, net=net)
    p = next(model.parameters())
    d = model(x.to(p.device, p.dtype), y.to(p.device, p.dtype), normalize=True).flatten().cpu()
    return d.mean() if reduction == "mean" else d
