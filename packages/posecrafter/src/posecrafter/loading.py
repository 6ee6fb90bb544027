"""Components of Stable Diffusion + ControlNet: a local diffusers folder or hub id (SD 1.5 and
ControlNet-OpenPose), or ``"tiny"`` — built offline at toy size from configs, for tests, the demo and trying the
package without downloads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from gen_common.checkpoint import resolve_pretrained

__all__ = [
    "SD15_RANDOM",
    "TINY",
    "Components",
    "load_components",
    "sd15_random_components",
    "tiny_components",
]

TINY = "tiny"
SD15_RANDOM = (
    "sd15-random"  # SD 1.5 + ControlNet shapes with random weights: GPU benchmarks without downloads
)


@dataclass
class Components:
    """What PoseCrafter needs from SD + ControlNet (a stock ``StableDiffusionControlNetPipeline`` has them all)."""

    vae: Any
    text_encoder: Any
    tokenizer: Any
    unet: Any
    controlnet: Any
    scheduler: Any

    @classmethod
    def from_pipe(cls, pipe: Any) -> Components:
        return cls(pipe.vae, pipe.text_encoder, pipe.tokenizer, pipe.unet, pipe.controlnet, pipe.scheduler)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Components:
        for m in (self.vae, self.text_encoder, self.unet, self.controlnet):
            m.to(device) if dtype is None else m.to(device, dtype)
        return self


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def tiny_components(seed: int = 0) -> Components:
    """Toy SD + ControlNet (32-px images, 16-px latents: the tiny VAE downsamples by 2). The UNet keeps SD 1.5's
    block order (attention in the outer down block and the last up block, none in the innermost ones) so the
    precursor's temporal-block rule applies to it as it does to SD: down block 0 and up block 1 get temporal
    attention, the mid block does not.

    Not `gen_common.testing.controlnet_tiny.tiny_controlnet`: its `tiny_unet` puts cross-attention in the inner
    down block and the first up block (("DownBlock2D", "CrossAttnDownBlock2D")), the reverse of SD's order, so the
    temporal-block rule (down 0, up 1) would land on blocks without attention there."""
    import diffusers

    from gen_common.testing.diffusers_tiny import (
        clip_tokenizer,
        sd_ddim_scheduler,
        tiny_clip_text_model,
        tiny_vae,
    )

    with _seeded(seed):
        unet = diffusers.UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=1,
            sample_size=16,
            in_channels=4,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32,
            norm_num_groups=32,
            attention_head_dim=8,
        ).eval()
    with _seeded(seed + 1):
        # the conditioning encoder downsamples by 2 ** (len − 1) = 2, the tiny VAE's factor
        controlnet = diffusers.ControlNetModel.from_unet(
            unet, conditioning_embedding_out_channels=(16, 32)
        ).eval()
        # from_unet zero-initialises the output convs (a fresh ControlNet adds nothing); give them small random
        # weights so the pose actually steers the tiny model in tests and the demo
        for m in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            torch.nn.init.normal_(m.weight, std=0.05)
    scheduler = sd_ddim_scheduler()
    return Components(
        tiny_vae(seed), tiny_clip_text_model(seed=seed), clip_tokenizer(), unet, controlnet, scheduler
    )


def sd15_random_components(seed: int = 0) -> Components:
    """Stable Diffusion 1.5 and ControlNet-OpenPose at their real sizes (UNet 860M, CLIP ViT-L text encoder,
    the 4-block VAE) with random weights: for timing and memory benchmarks where the weights do not matter."""
    import diffusers
    import transformers

    from gen_common.testing.diffusers_tiny import clip_tokenizer, sd_ddim_scheduler

    with _seeded(seed):
        unet = diffusers.UNet2DConditionModel(
            cross_attention_dim=768, attention_head_dim=8, sample_size=64
        ).eval()
        controlnet = diffusers.ControlNetModel.from_unet(unet).eval()
        vae = diffusers.AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            latent_channels=4,
            sample_size=512,
        ).eval()
        text = transformers.CLIPTextModel(
            transformers.CLIPTextConfig(
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                projection_dim=768,
            )
        ).eval()
    scheduler = sd_ddim_scheduler()
    return Components(vae, text, clip_tokenizer(), unet, controlnet, scheduler)


def load_components(
    model: str,
    controlnet: str | None = None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> Components:
    """``model``: "tiny", "sd15-random" (real sizes, random weights), or a Stable Diffusion folder/hub id (e.g. ``stable-diffusion-v1-5/stable-diffusion-v1-5``);
    ``controlnet``: a ControlNet folder/hub id (e.g. ``lllyasviel/sd-controlnet-openpose``), required unless
    ``model`` is "tiny" or the folder is a full ControlNet pipeline. A hub id while offline raises `OfflineError`
    saying how to get a local copy. The scheduler is DDIM (the precursor's), whatever the folder ships."""
    import diffusers

    if model == TINY:
        comps = tiny_components(seed)
    elif model == SD15_RANDOM:
        comps = sd15_random_components(seed)
    else:
        sd = resolve_pretrained(model)
        cn = None
        if controlnet is not None:
            cn = diffusers.ControlNetModel.from_pretrained(resolve_pretrained(controlnet))
        elif not (sd / "controlnet").is_dir():
            raise ValueError(f"{model} has no controlnet/ folder: pass --controlnet (an OpenPose ControlNet)")
        kwargs = {"controlnet": cn} if cn is not None else {}
        pipe = diffusers.StableDiffusionControlNetPipeline.from_pretrained(
            sd, safety_checker=None, requires_safety_checker=False, **kwargs
        )
        comps = Components.from_pipe(pipe)
        comps.scheduler = diffusers.DDIMScheduler.from_config(pipe.scheduler.config)
    return comps.to(device, dtype)
