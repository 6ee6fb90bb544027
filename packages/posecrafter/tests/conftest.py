"""Shared fixtures: the tiny offline SD + ControlNet components are built once per session (about a second)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_parts():
    from posecrafter.loading import tiny_components

    return tiny_components(seed=0)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)
