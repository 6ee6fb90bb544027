"""Shared fixtures: tiny offline pipelines, built once per session from configs under a seed."""

from __future__ import annotations

import pytest
import torch


def _tiny_sdxl(seed: int = 0):
    """A tiny SDXL base (two text encoders, text-time conditioning, Euler "leading" as SDXL ships) until
    `gen_common.testing.sdxl_tiny` lands."""
    import diffusers
    import transformers

    from gen_common.testing.diffusers_tiny import _seeded_build, clip_tokenizer, tiny_vae

    cfg = transformers.CLIPTextConfig(
        vocab_size=49408, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, projection_dim=32, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    )  # fmt: skip
    with _seeded_build(seed):
        te1 = transformers.CLIPTextModel(cfg).eval()
        te2 = transformers.CLIPTextModelWithProjection(cfg).eval()
        unet = diffusers.UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32, cross_attention_dim=64,
            norm_num_groups=32,
        ).eval()  # fmt: skip
    sched = diffusers.EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )
    tok = clip_tokenizer()
    pipe = diffusers.StableDiffusionXLPipeline(
        vae=tiny_vae(seed), text_encoder=te1, text_encoder_2=te2, tokenizer=tok, tokenizer_2=tok, unet=unet,
        scheduler=sched,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _tiny_sdxl_refiner(base):
    import diffusers

    comps = {k: v for k, v in base.components.items()}
    ref = diffusers.StableDiffusionXLImg2ImgPipeline(**comps, requires_aesthetics_score=False)
    ref.set_progress_bar_config(disable=True)
    return ref


@pytest.fixture(scope="session")
def sd_pipe():
    from gen_common.testing.diffusers_tiny import tiny_sd_pipeline

    return tiny_sd_pipeline(seed=0)


@pytest.fixture(scope="session")
def sdxl_pipe():
    return _tiny_sdxl(seed=0)


@pytest.fixture(scope="session")
def sdxl_refiner(sdxl_pipe):
    return _tiny_sdxl_refiner(sdxl_pipe)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def tiny_open_clip(seed: int = 0):
    """A tiny open_clip CLIP (32-px images) and its real BPE tokenizer, until `gen_common.testing.clip_tiny` lands."""
    import open_clip
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    from gen_common.testing.diffusers_tiny import _seeded_build

    with _seeded_build(seed):
        model = open_clip.CLIP(
            embed_dim=16,
            vision_cfg=CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=32),
            text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
        ).eval()
    return model, open_clip.get_tokenizer("ViT-B-32")


def tiny_hf_clip(seed: int = 0):
    import transformers

    from gen_common.testing.diffusers_tiny import _seeded_build, clip_tokenizer

    cfg = transformers.CLIPConfig(
        text_config={"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": 49406,
                     "eos_token_id": 49407, "pad_token_id": 49407},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )  # fmt: skip
    with _seeded_build(seed):
        model = transformers.CLIPModel(cfg).eval()
    return model, clip_tokenizer()


@pytest.fixture(scope="session")
def open_clip_scorer():
    from iced_coke.scoring import CLIPScore, OpenCLIPBackend

    return CLIPScore(OpenCLIPBackend(*tiny_open_clip()))


@pytest.fixture(scope="session")
def hf_clip_scorer():
    from iced_coke.scoring import CLIPScore, TransformersCLIPBackend

    return CLIPScore(TransformersCLIPBackend(*tiny_hf_clip()))
