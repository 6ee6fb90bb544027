import copy
import re

import pytest
import torch
from posecrafter.attention import (
    KeyFrameTemporalAttnProcessor,
    frame_kwargs,
    inflate_controlnet,
    inflate_unet,
    select_trainable,
    temporal_processors,
)


@pytest.fixture(scope="module")
def models(tiny_parts):
    base = tiny_parts.unet
    unet = inflate_unet(copy.deepcopy(base))
    return base, unet


def _inputs(frames, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(frames, 4, 16, 16, generator=g)
    text = torch.randn(1, 77, 32, generator=g).expand(frames, -1, -1)
    return x, torch.tensor(500), text


@torch.no_grad()
def _run(unet, x, t, text, frames=None):
    kw = frame_kwargs(frames) if frames is not None else None
    return unet(x, t, encoder_hidden_states=text, cross_attention_kwargs=kw).sample


def test_temporal_modules_sit_where_the_precursor_puts_them(models, tiny_parts):
    _, unet = models
    names = sorted(temporal_processors(unet))
    assert names and all(n.startswith(("down_blocks.0.", "up_blocks.1.")) for n in names)
    assert {n.split(".")[0] + n.split(".")[1] for n in names} == {"down_blocks0", "up_blocks1"}
    cn = inflate_controlnet(copy.deepcopy(tiny_parts.controlnet))
    assert not temporal_processors(cn)


def test_inflated_equals_base_at_init_and_with_one_frame(models):
    base, unet = models
    x, t, text = _inputs(3)
    ref = _run(base, x, t, text)
    torch.testing.assert_close(_run(unet, x, t, text, frames=1), ref, rtol=0, atol=1e-5)
    out = _run(unet, x, t, text, frames=3)
    torch.testing.assert_close(out[0], ref[0], rtol=0, atol=1e-5)  # the key frame attends to itself
    assert (out[1:] - ref[1:]).abs().max() > 1e-3  # the others attend to the key frame


def test_one_frame_equals_base_after_training_too(models):
    base, unet = models
    trained = copy.deepcopy(unet)
    for proc in temporal_processors(trained).values():
        torch.nn.init.normal_(proc.conv_temp.weight, std=0.1)
    x, t, text = _inputs(2)
    torch.testing.assert_close(_run(trained, x, t, text, frames=1), _run(base, x, t, text), rtol=0, atol=1e-5)


def test_frame_count_reaches_processors(models):
    _, unet = models
    x, t, text = _inputs(3)
    y = x.clone()
    y[0] += 1.0
    out_x, out_y = _run(unet, x, t, text, 3), _run(unet, y, t, text, 3)
    assert (out_x[2] - out_y[2]).abs().max() > 1e-3  # frame 2 reads frame 0's keys/values
    z = x.clone()
    z[1] += 1.0  # at init (zero conv) nothing but the key frame reaches frame 2
    torch.testing.assert_close(_run(unet, z, t, text, 3)[2], out_x[2], rtol=0, atol=1e-5)
    # without the frame count every image is its own video: frame 2 ignores frame 0
    torch.testing.assert_close(_run(unet, x, t, text, 1)[2], _run(unet, y, t, text, 1)[2], rtol=0, atol=1e-5)


def test_temporal_attention_mixes_frames_once_trained(models):
    _, unet = models
    trained = copy.deepcopy(unet)
    for proc in temporal_processors(trained).values():
        torch.nn.init.normal_(proc.conv_temp.weight, std=0.1)
    x, t, text = _inputs(3)
    z = x.clone()
    z[1] += 1.0
    assert (_run(trained, x, t, text, 3)[2] - _run(trained, z, t, text, 3)[2]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="whole number"):
        _run(trained, x[:2], t, text[:2], 3)


def test_controlnet_key_frame_attention(tiny_parts):
    base = tiny_parts.controlnet
    cn = inflate_controlnet(copy.deepcopy(base))
    x, t, text = _inputs(2)
    cond = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, m0 = base(x, t, text, controlnet_cond=cond, return_dict=False)
        _, m1 = cn(
            x, t, text, controlnet_cond=cond, return_dict=False, cross_attention_kwargs=frame_kwargs(1)
        )
        _, m2 = cn(
            x, t, text, controlnet_cond=cond, return_dict=False, cross_attention_kwargs=frame_kwargs(2)
        )
    torch.testing.assert_close(m1, m0, rtol=0, atol=1e-5)
    torch.testing.assert_close(m2[0], m0[0], rtol=0, atol=1e-5)
    assert (m2[1] - m0[1]).abs().max() > 1e-4


def test_trainable_set_equals_precursor_rule(models, tiny_parts):
    _, unet = models
    unet = copy.deepcopy(unet)
    cn = inflate_controlnet(copy.deepcopy(tiny_parts.controlnet))
    chosen = select_trainable({"unet": unet, "controlnet": cn})
    rule = re.compile(r"(attn1\.to_out|attn_temp|conv_temp)\.")
    expected = {f"unet.{n}" for n, _ in unet.named_parameters() if rule.search(n)}
    expected |= {f"controlnet.{n}" for n, _ in cn.named_parameters() if rule.search(n)}
    assert set(chosen) == expected
    assert any("attn_temp" in n for n in chosen) and not any(
        n.startswith("controlnet.") and "temp" in n for n in chosen
    )
    grad_on = {f"unet.{n}" for n, p in unet.named_parameters() if p.requires_grad}
    grad_on |= {f"controlnet.{n}" for n, p in cn.named_parameters() if p.requires_grad}
    assert grad_on == expected  # everything else is frozen (the precursor leaves it all on)
    assert all(isinstance(p, KeyFrameTemporalAttnProcessor) for p in temporal_processors(unet).values())
