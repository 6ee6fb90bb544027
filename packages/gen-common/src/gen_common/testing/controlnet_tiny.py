"""A tiny offline ControlNet and `StableDiffusionControlNetPipeline` (``pip install 'gen-common[testing-diffusers]'``).

The ControlNet is `ControlNetModel.from_unet(tiny_unet(seed))`: its encoder copies the UNet's weights, exactly as a
ControlNet is initialised before training, so the two match in every shape. Its conditioning embedding has two
stages (16, 32 channels, one stride-2 conv), so a 32-px control image lands on the 16-px latent grid.

A freshly initialised ControlNet has zero convolutions on every output, so it changes nothing; a test of a method
that steers through the ControlNet would then pass vacuously. By default those convolutions therefore get torch's
default initialisation under the seed (``zero_init=True`` keeps them zero, as at the start of training).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from gen_common.testing.diffusers_tiny import _require, _seeded_build, tiny_sd_components, tiny_unet

__all__ = ["tiny_control_image", "tiny_controlnet", "tiny_controlnet_pipeline"]


def tiny_controlnet(seed: int = 0, zero_init: bool = False, unet: Any = None) -> Any:
    """A `ControlNetModel` built from ``unet`` (default `tiny_unet(seed=seed)`), in eval mode.

    ``zero_init=False`` (default) initialises the zero convolutions like any convolution, so the control image
    has an effect on the UNet's prediction.
    """
    diffusers = _require("diffusers")
    unet = tiny_unet(seed=seed) if unet is None else unet
    with _seeded_build(seed + 1):  # +1: a stream of its own, not a replay of the UNet's initialisation
        net = diffusers.ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))
        if not zero_init:
            with torch.no_grad():
                for conv in [*net.controlnet_down_blocks, net.controlnet_mid_block]:
                    conv.reset_parameters()  # torch's default (Kaiming-uniform) initialisation
                # Variance-preserving init of the control-image encoder: with torch's default its output is ~0.04
                # against ~0.5 for the latent's conv_in, and the control image would barely move the prediction.
                emb = net.controlnet_cond_embedding
                for conv in [emb.conv_in, *emb.blocks, emb.conv_out]:
                    torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                    torch.nn.init.zeros_(conv.bias)
    return net.eval()


def tiny_control_image(seed: int = 0, size: int = 32) -> torch.Tensor:
    """A seeded control image (1, 3, size, size) in [0, 1] (what the pipeline's ``image=`` accepts)."""
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def tiny_controlnet_pipeline(
    seed: int = 0,
    device: str | torch.device = "cpu",
    tokenizer_dir: str | os.PathLike[str] | None = None,
    zero_init: bool = False,
) -> Any:
    """A complete offline `StableDiffusionControlNetPipeline` (no safety checker, progress bar off) on ``device``.

    Its UNet, VAE, text encoder and tokenizer are those of `tiny_sd_pipeline(seed)`; call it with
    ``image=tiny_control_image(), height=32, width=32``.
    """
    diffusers = _require("diffusers")
    components = tiny_sd_components(seed, tokenizer_dir=tokenizer_dir)
    controlnet = tiny_controlnet(seed, zero_init=zero_init, unet=components["unet"])
    pipe = diffusers.StableDiffusionControlNetPipeline(
        **components, controlnet=controlnet, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
