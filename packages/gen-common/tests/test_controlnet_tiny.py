"""The tiny ControlNet pipeline builds offline, is seeded, and its control image steers the UNet."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("open_clip")

from gen_common.testing import controlnet_tiny
from gen_common.testing.diffusers_tiny import tiny_unet


@pytest.fixture(scope="module")
def pipe():
    return controlnet_tiny.tiny_controlnet_pipeline(seed=0)


def _run(pipe, control_seed=0, seed=0):
    return pipe(
        "a red square",
        image=controlnet_tiny.tiny_control_image(control_seed),
        num_inference_steps=2,
        height=32,
        width=32,
        output_type="np",
        generator=torch.Generator().manual_seed(seed),
    ).images


def test_two_step_call_is_bit_deterministic_and_depends_on_the_control(pipe):
    a, b = _run(pipe), _run(pipe)
    assert a.shape == (1, 32, 32, 3)
    assert (a == b).all()
    assert not (a == _run(pipe, control_seed=1)).all()
    assert not (a == _run(pipe, seed=1)).all()


def test_controlnet_matches_the_unet_and_moves_its_prediction():
    unet = tiny_unet(seed=0)
    net = controlnet_tiny.tiny_controlnet(seed=0)
    # from_unet: the ControlNet's encoder starts as a copy of the UNet's
    assert torch.equal(net.conv_in.weight, unet.conv_in.weight)
    assert net.config.cross_attention_dim == unet.config.cross_attention_dim
    x = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    t, emb = torch.tensor([500]), torch.randn(1, 7, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = unet(x, t, emb).sample

        def steered(control_seed, controlnet=net):
            down, mid = controlnet(
                x, t, emb, controlnet_cond=controlnet_tiny.tiny_control_image(control_seed), return_dict=False
            )
            return unet(
                x, t, emb, down_block_additional_residuals=down, mid_block_additional_residual=mid
            ).sample

        a, b = steered(0), steered(1)
        zero = steered(0, controlnet_tiny.tiny_controlnet(seed=0, zero_init=True))
    assert torch.equal(zero, base), "zero convolutions leave the UNet unchanged"
    # the control image itself (not only the ControlNet's presence) changes the prediction noticeably
    assert (a - b).std() > 0.05 * base.std()
