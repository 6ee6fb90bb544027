"""CLIP similarity over orbit renders: closed-form cases with a tiny CLIP tower."""

from __future__ import annotations

import pytest
import torch
from microdreamer.cameras import orbit_cameras
from microdreamer.evaluation import clip_similarity
from microdreamer.gaussians import GaussianModel


def test_isotropic_object_matches_its_own_view_exactly():
    transformers = pytest.importorskip("transformers")
    from gen_common.testing.video_tiny import tiny_clip_vision_model

    enc = tiny_clip_vision_model(seed=0, image_size=16, patch_size=4)
    assert isinstance(enc, transformers.CLIPVisionModelWithProjection)
    sphere = GaussianModel.from_activated(
        torch.zeros(1, 3), torch.full((1, 3), 0.3), torch.tensor([[0.9, 0.1, 0.1]]), torch.tensor([0.95])
    )
    ref = sphere.render(orbit_cameras([0.0], [0.0], size=64)).image
    assert clip_similarity(sphere, ref, enc, size=64) == pytest.approx(
        1.0, abs=1e-5
    )  # every azimuth looks the same
    other = torch.ones_like(ref)
    other[:, :, 16:48, 16:48] = torch.tensor([0.1, 0.2, 0.9]).view(1, 3, 1, 1)
    assert clip_similarity(sphere, other, enc, size=64) < 1 - 1e-3


def test_callable_encoder():
    sphere = GaussianModel.from_activated(
        torch.zeros(1, 3), torch.full((1, 3), 0.3), torch.rand(1, 3), torch.tensor([0.9])
    )
    mean_colour = lambda imgs: imgs.mean((2, 3))  # noqa: E731
    ref = sphere.render(orbit_cameras([0.0], [0.0], size=32)).image
    assert clip_similarity(sphere, ref, mean_colour, size=32) == pytest.approx(1.0, abs=1e-6)
