from __future__ import annotations

import warnings

import pytest
import torch
from longalign import (
    DecomposedPreference,
    common_direction,
    decompose_preference,
    preference_score,
    reward_crop,
)


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


@pytest.fixture
def feats():
    g = torch.Generator().manual_seed(1)
    f = unit(torch.randn(6, 16, generator=g, dtype=torch.float64))
    t = unit(torch.randn(6, 16, generator=g, dtype=torch.float64) + 2.0)  # texts share a common direction
    return f, t


def test_parts_sum_to_plain_score_and_relevant_is_orthogonal(feats):
    f, t = feats
    v = common_direction(t)
    rel, irr = decompose_preference(f, t, v)
    torch.testing.assert_close(rel + irr, (t * f).sum(-1))
    eta = t @ v
    torch.testing.assert_close((t - eta[:, None] * v) @ v, torch.zeros(6, dtype=torch.float64))
    torch.testing.assert_close(preference_score(f, t, v, weight=1.0), (t * f).sum(-1))
    torch.testing.assert_close(preference_score(f, t, v, weight=0.3), rel + 0.3 * irr)


def test_zero_weight_gradient_is_orthogonal_to_direction(feats):
    f, t = feats
    f = f.clone().requires_grad_(True)
    v = common_direction(t)
    preference_score(f, t, v, weight=0.0).sum().backward()
    assert f.grad.abs().max() > 1e-3
    torch.testing.assert_close(f.grad @ v, torch.zeros(6, dtype=torch.float64))


def test_direction_is_mean_of_process_means(feats):
    _, t = feats
    other = t.flip(0)[:2] * 0.5  # a second process with another batch
    gathered = lambda m: torch.cat([m, other.mean(0, keepdim=True)])  # noqa: E731
    v = common_direction(t, gather=gathered)
    want = (t.mean(0) + other.mean(0)) / 2
    torch.testing.assert_close(v, want / want.norm())


def test_batch_of_one_warns_and_relevant_is_zero(feats):
    f, t = feats
    with pytest.warns(UserWarning, match="relevant part is exactly 0"):
        s = preference_score(f[:1], t[:1], weight=0.0)
    assert abs(float(s)) < 1e-12


def test_reward_crop_is_a_ratio_then_resize():
    img = torch.zeros(1, 3, 512, 512)
    img[:, :, :8, :] = 1.0  # an 8-px band that a 504-px crop may or may not include
    out = reward_crop(img, 224, mean=(0, 0, 0), std=(1, 1, 1), generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 3, 224, 224)
    # a 64-px image crops 63 px: the same ratio
    small = reward_crop(torch.rand(2, 3, 64, 64), 32, generator=torch.Generator().manual_seed(0))
    assert small.shape == (2, 3, 32, 32)
    flat = reward_crop(torch.full((1, 3, 64, 64), 0.5), 32, mean=(0.5,) * 3, std=(1, 1, 1))
    assert flat.abs().max() < 1e-6


def test_decomposed_preference_tiny_clip(clip_model, tokenizer):
    pm = DecomposedPreference(clip_model, tokenizer, image_size=32, weight=0.3)
    prompts = ["A red cube. A blue ball on top.", "A green field.", "Night sky. Many stars. A moon."]
    imgs = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = pm(imgs, prompts, generator=torch.Generator().manual_seed(1))
    # text features: mean over segments of unit segment features
    seg = pm.segment_features(["A red cube.", "A blue ball on top."])
    torch.testing.assert_close(pm.text_features(prompts)[0], seg.mean(0))
    torch.testing.assert_close(out.score, out.relevant + 0.3 * out.irrelevant)
    f = pm.image_features(imgs, generator=torch.Generator().manual_seed(1))
    t = pm.text_features(prompts)
    torch.testing.assert_close(out.relevant + out.irrelevant, (t * f).sum(-1), atol=1e-6, rtol=1e-5)
    out.score.sum().backward()
    assert imgs.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip_model.parameters())


def test_direction_modes(clip_model, tokenizer):
    imgs = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    pm = DecomposedPreference(clip_model, tokenizer, image_size=32)
    with pytest.warns(UserWarning, match="batch of 1"):
        assert abs(float(pm(imgs, ["A cat."], weight=0.0).score)) < 1e-6
    two = torch.cat([imgs, imgs.flip(-1)])
    with pytest.warns(UserWarning, match="one text repeated"):  # what a one-prompt training file gives
        assert float(pm(two, ["A cat.", "A cat."], weight=0.0).score.abs().max()) < 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # different texts: no warning
        assert float(pm(two, ["A cat.", "A red house."], weight=0.0).relevant.abs().max()) > 1e-4
    v = unit(torch.randn(16, generator=torch.Generator().manual_seed(3)))
    given = DecomposedPreference(clip_model, tokenizer, image_size=32, direction=v)
    out = given(imgs, ["A cat."])
    torch.testing.assert_close(out.direction, v)
    assert abs(float(out.relevant)) > 1e-4
    ema = DecomposedPreference(clip_model, tokenizer, image_size=32, direction="ema", ema_decay=0.5).train()
    t1, t2 = ema.text_features(["A cat."]), ema.text_features(["A dog."])
    ema(imgs, ["A cat."])
    d = ema(imgs, ["A dog."]).direction
    want = 0.5 * t1[0] + 0.5 * t2[0]
    torch.testing.assert_close(d, want / want.norm())


def test_open_clip_backend(tokenizer):
    open_clip = pytest.importorskip("open_clip")
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    model = CLIP(
        embed_dim=16,
        vision_cfg=CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=32),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
    )
    pm = DecomposedPreference.from_open_clip(model, open_clip.tokenize, weight=1.0)
    imgs = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = pm(imgs, ["A cat. A hat.", "A dog."], generator=torch.Generator().manual_seed(0))
    f = pm.image_features(imgs, generator=torch.Generator().manual_seed(0))
    t = pm.text_features(["A cat. A hat.", "A dog."])
    torch.testing.assert_close(out.score, (t * f).sum(-1), atol=1e-6, rtol=1e-5)
