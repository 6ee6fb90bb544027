"""Tiny SDXL base and refiner: seeded, offline, and the base → refiner hand-off is exact with shared modules."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("open_clip")

from gen_common.testing import sdxl_tiny


@pytest.fixture(scope="module")
def base():
    return sdxl_tiny.tiny_sdxl_pipeline(seed=0)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_base_two_step_call_is_bit_deterministic(base):
    kw = dict(num_inference_steps=2, height=32, width=32, output_type="np")
    a = base("a cat", generator=_gen(), **kw).images
    b = base("a cat", generator=_gen(), **kw).images
    assert a.shape == (1, 32, 32, 3)
    assert (a == b).all()
    assert not (a == base("a cat", generator=_gen(1), **kw).images).all()
    assert type(base.text_encoder_2).__name__ == "CLIPTextModelWithProjection"
    assert base.unet.config.cross_attention_dim == (
        base.text_encoder.config.hidden_size + base.text_encoder_2.config.hidden_size
    )


def test_refiner_style_img2img_is_a_real_refiner_and_deterministic(base):
    ref = sdxl_tiny.tiny_sdxl_img2img_pipeline(seed=0)
    assert ref.text_encoder is None and ref.tokenizer is None
    assert ref.config.requires_aesthetics_score
    assert ref.unet.config.cross_attention_dim == ref.text_encoder_2.config.hidden_size
    # same builders, same seed: the refiner's VAE and second encoder equal the base's
    for x, y in [(ref.vae, base.vae), (ref.text_encoder_2, base.text_encoder_2)]:
        assert all(torch.equal(p, q) for p, q in zip(x.state_dict().values(), y.state_dict().values()))
    half = base(
        "a cat",
        num_inference_steps=2,
        denoising_end=0.5,
        height=32,
        width=32,
        generator=_gen(),
        output_type="latent",
    ).images
    kw = dict(image=half, num_inference_steps=2, denoising_start=0.5, output_type="np")
    a = ref("a cat", generator=_gen(), **kw).images
    b = ref("a cat", generator=_gen(), **kw).images
    assert a.shape == (1, 32, 32, 3)
    assert (a == b).all()


def test_hand_off_to_a_refiner_sharing_the_base_modules_reproduces_the_full_run(base):
    ref = sdxl_tiny.tiny_sdxl_img2img_pipeline(from_base=base)
    assert ref.unet is base.unet and ref.vae is base.vae and ref.text_encoder_2 is base.text_encoder_2
    assert ref.scheduler is not base.scheduler
    kw = dict(num_inference_steps=4, height=32, width=32, output_type="latent")
    full = base("a cat", generator=_gen(), **kw).images
    half = base("a cat", denoising_end=0.5, generator=_gen(), **kw).images
    out = ref(
        "a cat",
        image=half,
        num_inference_steps=4,
        denoising_start=0.5,
        generator=_gen(),
        output_type="latent",
    ).images
    assert not torch.equal(half, full)
    assert torch.equal(out, full)
