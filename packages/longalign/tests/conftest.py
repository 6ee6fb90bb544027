"""Shared fixtures: tiny offline components, built once per session under fixed seeds."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def sd_pipe():
    from longalign.toys import tiny_sd_pipeline

    return tiny_sd_pipeline(seed=0)


@pytest.fixture(scope="session")
def tokenizer(sd_pipe):
    return sd_pipe.tokenizer


@pytest.fixture(scope="session")
def text_encoder(sd_pipe):
    return sd_pipe.text_encoder


@pytest.fixture(scope="session")
def clip_model():
    from gen_common.testing.clip_tiny import tiny_clip_model

    return tiny_clip_model(seed=0)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)
