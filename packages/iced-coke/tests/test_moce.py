"""MoCE identities on tiny SD and tiny SDXL, bit-exact: k = 0 / k = T are plain sampling, the stage-1 cache resumes
bit-identically, and the SDXL base → refiner hand-off equals the one-pipeline callback swap."""

from __future__ import annotations

import pytest
import torch
from iced_coke.moce import (
    MoCEError,
    count_unet_calls,
    handoff_fraction,
    moce_sample,
    resume_stage2,
    stage1_latents,
)

PROMPT, FIRST = "a tea cup of iced coke", "tea cup"
SD_KW = {"output_type": "latent", "guidance_scale": 7.5, "height": 32, "width": 32}
XL_KW = {"output_type": "latent", "guidance_scale": 5.0, "height": 32, "width": 32}


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def plain(pipe, prompt, T, **kw):
    return pipe(prompt=prompt, num_inference_steps=T, generator=g(), **kw).images


@pytest.mark.parametrize(("fixture", "kw"), [("sd_pipe", SD_KW), ("sdxl_pipe", XL_KW)])
def test_endpoints_equal_plain_sampling(request, fixture, kw):
    pipe, T = request.getfixturevalue(fixture), 4
    assert torch.equal(
        moce_sample(pipe, PROMPT, FIRST, 0, T, generator=g(), **kw).images, plain(pipe, PROMPT, T, **kw)
    )
    assert torch.equal(
        moce_sample(pipe, PROMPT, FIRST, T, T, generator=g(), **kw).images, plain(pipe, FIRST, T, **kw)
    )


@pytest.mark.parametrize(("fixture", "kw"), [("sd_pipe", SD_KW), ("sdxl_pipe", XL_KW)])
def test_prefix_follows_first_concept_then_swaps(request, fixture, kw):
    """The latents before the switch equal first-concept sampling; the step after it does not."""
    pipe, T, k = request.getfixturevalue(fixture), 5, 2
    seen: list[torch.Tensor] = []

    def rec(p, i, t, kw_):
        seen.append(kw_["latents"].clone())
        return {}

    moce_sample(pipe, PROMPT, FIRST, k, T, generator=g(), callback_on_step_end=rec, **kw)
    ref = stage1_latents(pipe, FIRST, T, T, generator=g(), **kw)
    for i in range(k):
        assert torch.equal(seen[i], ref[i + 1])
    assert not torch.equal(seen[k], ref[k + 1])
    assert len(seen) == T


@pytest.mark.parametrize(("fixture", "kw", "T"), [("sd_pipe", SD_KW, 6), ("sdxl_pipe", XL_KW, 6)])
def test_stage2_resume_is_bit_identical_and_cheap(request, fixture, kw, T):
    pipe = request.getfixturevalue(fixture)
    cache = stage1_latents(pipe, FIRST, T, 4, generator=g(), **kw)
    assert sorted(cache.latents) == [1, 2, 3, 4] and cache.unet_calls == 4
    for k in (0, 1, 3, 4):
        with count_unet_calls(pipe) as c:
            got = resume_stage2(pipe, cache, PROMPT, k, **kw).images
        want = moce_sample(pipe, PROMPT, FIRST, k, T, generator=g(), **kw).images
        assert torch.equal(got, want), k
        assert c.calls == T - k
    with pytest.raises(MoCEError, match="not cached"):
        resume_stage2(pipe, cache, PROMPT, 5, **kw)


def test_decoded_images_also_match(sd_pipe):
    kw = {**SD_KW, "output_type": "pt"}
    cache = stage1_latents(sd_pipe, FIRST, 4, 2, generator=g(), **kw)
    a = resume_stage2(sd_pipe, cache, PROMPT, 2, **kw).images
    b = moce_sample(sd_pipe, PROMPT, FIRST, 2, 4, generator=g(), **kw).images
    assert a.shape == (1, 3, 32, 32) and torch.equal(a, b)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_sdxl_handoff_equals_single_pipeline_swap(sdxl_pipe, sdxl_refiner, k):
    T = 6
    single = moce_sample(sdxl_pipe, PROMPT, FIRST, k, T, generator=g(), **XL_KW).images
    hand = moce_sample(sdxl_pipe, PROMPT, FIRST, k, T, generator=g(), refiner=sdxl_refiner, **XL_KW).images
    assert torch.equal(single, hand)
    cache = stage1_latents(sdxl_pipe, FIRST, T, 3 if k <= 3 else 5, generator=g(), **XL_KW)
    with count_unet_calls(sdxl_pipe, sdxl_refiner) as c:
        resumed = resume_stage2(sdxl_pipe, cache, PROMPT, k, refiner=sdxl_refiner, **XL_KW).images
    assert torch.equal(resumed, single) and c.calls == T - k


def test_handoff_fraction_places_exactly_k_base_steps(sdxl_pipe):
    # T = 40 (released set-up): the release's k/T cut gives the same split
    s = sdxl_pipe.scheduler
    for k in range(1, 40):
        f = handoff_fraction(s, k, 40)
        assert round(1000 - f * 1000) <= 1001 - 25 * k and round(1000 - 1000 * k / 40) <= 1001 - 25 * k
    # T = 30 under "leading" spacing: k/T = 1/30 cuts above the first timestep (no base step); ours cuts after one
    probe = type(s).from_config(s.config)
    probe.set_timesteps(30)
    ts = [int(t) for t in probe.timesteps]
    for k in range(1, 30):
        cut = round(1000 - 1000 * handoff_fraction(s, k, 30))
        assert sum(t >= cut for t in ts) == k
    assert sum(t >= round(1000 - 1000 / 30) for t in ts) == 0


def test_handoff_t30_runs_k_base_steps(sdxl_pipe, sdxl_refiner):
    T, k = 30, 1
    with count_unet_calls(sdxl_pipe) as c:
        sdxl_pipe(
            prompt=FIRST,
            num_inference_steps=T,
            denoising_end=handoff_fraction(sdxl_pipe.scheduler, k, T),
            generator=g(),
            **XL_KW,
        )
    assert c.calls == k


@pytest.mark.parametrize("bad", [-1, 5, 2.5, True])
def test_switch_step_outside_range_is_rejected(sd_pipe, bad):
    with pytest.raises(MoCEError) as e:
        moce_sample(sd_pipe, PROMPT, FIRST, bad, 4, generator=g(), **SD_KW)
    assert "\n" not in str(e.value)


def test_handoff_rejects_k0_and_prompt_kwargs(sdxl_pipe, sdxl_refiner, sd_pipe):
    with pytest.raises(MoCEError, match="switch_step >= 1"):
        moce_sample(sdxl_pipe, PROMPT, FIRST, 0, 4, refiner=sdxl_refiner, **XL_KW)
    with pytest.raises(MoCEError, match="prompt_embeds"):
        moce_sample(sd_pipe, PROMPT, FIRST, 1, 4, prompt_embeds=torch.zeros(1), **SD_KW)


def test_multistep_scheduler_refuses_resume(sd_pipe):
    import diffusers

    pipe = diffusers.StableDiffusionPipeline(
        **{
            **sd_pipe.components,
            "scheduler": diffusers.DPMSolverMultistepScheduler.from_config(sd_pipe.scheduler.config),
        },
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    cache = stage1_latents(pipe, FIRST, 4, 2, generator=g(), **SD_KW)
    with pytest.raises(MoCEError, match="solver history"):
        resume_stage2(pipe, cache, PROMPT, 2, **SD_KW)
    # the callback swap itself works on any scheduler
    a = moce_sample(pipe, PROMPT, FIRST, 4, 4, generator=g(), **SD_KW).images
    assert torch.equal(a, plain(pipe, FIRST, 4, **SD_KW))
