"""Shared fixtures: tiny offline pipelines, built once per session from configs under a seed."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def sd_pipe():
    from gen_common.testing.diffusers_tiny import tiny_sd_pipeline

    return tiny_sd_pipeline(seed=0)


@pytest.fixture(scope="session")
def sdxl_pair():
    from iced_coke.runs import _tiny_sdxl

    return _tiny_sdxl(0)


@pytest.fixture(scope="session")
def sdxl_pipe(sdxl_pair):
    return sdxl_pair[0]


@pytest.fixture(scope="session")
def sdxl_refiner(sdxl_pair):
    return sdxl_pair[1]


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
