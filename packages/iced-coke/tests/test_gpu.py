"""On CUDA (skipped without): the MoCE identities and the cache resume hold on the GPU too, in fp32 and fp16."""

from __future__ import annotations

import pytest
import torch
from iced_coke.moce import moce_sample, resume_stage2, stage1_latents

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_identities_on_cuda(dtype):
    from gen_common.testing.diffusers_tiny import tiny_sd_pipeline

    pipe = tiny_sd_pipeline(seed=0).to("cuda", dtype)
    kw = {"height": 32, "width": 32, "output_type": "latent"}

    def g():
        return torch.Generator("cpu").manual_seed(0)  # noise drawn on the CPU: same sample on any device

    T = 6
    plain = pipe(prompt="a tea cup of iced coke", num_inference_steps=T, generator=g(), **kw).images
    assert torch.equal(
        moce_sample(pipe, "a tea cup of iced coke", "tea cup", 0, T, generator=g(), **kw).images, plain
    )
    one = moce_sample(pipe, "a tea cup of iced coke", "tea cup", 2, T, generator=g(), **kw).images
    cache = stage1_latents(pipe, "tea cup", T, 3, generator=g(), **kw)
    assert torch.equal(resume_stage2(pipe, cache, "a tea cup of iced coke", 2, **kw).images, one)
