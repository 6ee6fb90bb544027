"""Shared fixtures: the tiny offline pipelines are built once per session (a few seconds of CPU)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def svd_pipe():
    from gen_common.testing.video_tiny import tiny_svd_pipeline

    return tiny_svd_pipeline(seed=0)


@pytest.fixture(scope="session")
def i2vgen_pipe():
    from gen_common.testing.video_tiny import tiny_i2vgenxl_pipeline

    return tiny_i2vgenxl_pipeline(seed=0)


@pytest.fixture(scope="session")
def image():
    from i2v_leak.video_io import synthetic_image

    return synthetic_image(32, 32, seed=0)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def pytest_collection_modifyitems(config, items):
    """diffusers' Euler scheduler trips a numpy-2 DeprecationWarning in its own code; silence it for this
    package's tests only."""
    from pathlib import Path

    here = Path(__file__).parent
    mark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(mark)
