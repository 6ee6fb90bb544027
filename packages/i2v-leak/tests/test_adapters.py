"""The wrapped stock pipelines: offline on CPU with and without the fix, with the grid and start they promise."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")

from i2v_leak.adapters import CILPipeline, detect_kind, wrap_pipeline
from i2v_leak.generation import GenerationConfig, generate_video, pipeline_kwargs
from i2v_leak.schedules import edm_sigmas, start_timesteps
from i2v_leak.stats import LatentStats

from gen_common.testing import assert_close

KW = dict(height=32, width=32, num_frames=2, num_inference_steps=3, output_type="pt")


def _stats(layout_frames=2):
    g = torch.Generator().manual_seed(7)
    return LatentStats(
        torch.randn(layout_frames, 4, 16, 16, generator=g) * 0.5 + 0.3, 0.7, 32, 32, layout_frames
    )


def _capture_prepared_latents(pipe, monkeypatch):
    seen = {}
    original = pipe.prepare_latents

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        seen["latents"] = out.clone()
        seen["sigmas"] = getattr(pipe.scheduler, "sigmas", None)
        seen["timesteps"] = pipe.scheduler.timesteps.clone()
        return out

    monkeypatch.setattr(pipe, "prepare_latents", spy)
    return seen


def test_detect_kind(svd_pipe, i2vgen_pipe):
    assert detect_kind(svd_pipe) == "svd"
    assert detect_kind(i2vgen_pipe) == "i2vgenxl"
    with pytest.raises(ValueError, match="supports"):
        detect_kind(object())


def test_svd_baseline_is_the_stock_pipeline(svd_pipe, image):
    cil = wrap_pipeline(svd_pipe, M=100.0, stats=_stats())
    a = cil.baseline(image, generator=torch.Generator().manual_seed(0), **KW).frames
    b = svd_pipe(image, generator=torch.Generator().manual_seed(0), **KW).frames
    assert torch.equal(a, b)


def test_svd_fix_uses_the_early_grid_and_analytic_init(svd_pipe, image, monkeypatch):
    stats = _stats()
    cil = wrap_pipeline(svd_pipe, M=100.0, stats=stats)
    seen = _capture_prepared_latents(svd_pipe, monkeypatch)
    out = cil(image, generator=torch.Generator().manual_seed(0), **KW).frames
    assert out.shape == (1, 2, 3, 32, 32)
    assert torch.isfinite(out).all()
    assert_close(
        seen["sigmas"].double(), torch.tensor(edm_sigmas(100.0, 3), dtype=torch.float64), rtol=1e-6, atol=1e-7
    )
    # the pipeline's starting latents are exactly the Analytic-Init draw N(E[x0], (100² + tr/d) I)
    want = cil.initial_latents(1, 32, 32, 2, 3, torch.Generator().manual_seed(0))
    assert_close(seen["latents"], want, rtol=1e-5, atol=1e-4)
    z = (want - stats.mean.unsqueeze(0)) / (100.0**2 + stats.tr_cov_over_d) ** 0.5
    assert abs(float(z.std()) - 1) < 0.1
    assert abs(float(z.mean())) < 0.1
    base = cil.baseline(image, generator=torch.Generator().manual_seed(0), **KW).frames
    assert not torch.equal(out, base)


def test_svd_early_start_without_stats_keeps_stock_noise(svd_pipe, image, monkeypatch):
    cil = wrap_pipeline(svd_pipe, M=100.0)
    seen = _capture_prepared_latents(svd_pipe, monkeypatch)
    cil(image, generator=torch.Generator().manual_seed(0), **KW)
    assert float(seen["sigmas"][0]) == pytest.approx(100.0)
    # stock SVD draws N(0, init_noise_sigma²) with init_noise_sigma = √(σ_max² + 1) for "leading" spacing
    assert float(seen["latents"].std()) == pytest.approx((100.0**2 + 1) ** 0.5, rel=0.1)


def test_svd_stats_at_another_size_are_refused(svd_pipe, image):
    bad = LatentStats(torch.zeros(2, 4, 8, 8), 0.5, 16, 16, 2)
    cil = wrap_pipeline(svd_pipe, M=100.0, stats=bad)
    with pytest.raises(ValueError, match="i2v-leak stats --height 32 --width 32"):
        cil(image, generator=torch.Generator().manual_seed(0), **KW)
    with pytest.raises(ValueError, match="set by the early-start fix"):
        wrap_pipeline(svd_pipe, M=100.0)(image, sigmas=[1.0, 0.0], **KW)


def test_wrap_from_a_stats_file_and_preset(svd_pipe, tmp_path):
    p = _stats().save(tmp_path / "s.safetensors")
    cil = wrap_pipeline(svd_pipe, stats=str(p), preset="svd")
    assert cil.pipe is svd_pipe and cil.kind == "svd"
    assert cil.M == 100.0
    assert cil.stats.height == 32
    with pytest.raises(ValueError, match="σ_max"):
        CILPipeline(svd_pipe, M=0.001)


def test_i2vgenxl_fix_runs_on_the_uneven_grid_and_restores_the_scheduler(i2vgen_pipe, image, monkeypatch):
    stats = _stats()
    original = i2vgen_pipe.scheduler
    cil = wrap_pipeline(i2vgen_pipe, M=940, stats=stats)
    seen_t = []
    hook = i2vgen_pipe.unet.register_forward_pre_hook(lambda m, args: seen_t.append(int(args[1])))
    seen = _capture_prepared_latents(i2vgen_pipe, monkeypatch)
    try:
        torch.manual_seed(0)
        out = cil(prompt="a square", image=image, generator=torch.Generator().manual_seed(0), **KW).frames
    finally:
        hook.remove()
    assert out.shape == (1, 2, 3, 32, 32)
    assert torch.isfinite(out).all()
    assert seen_t == start_timesteps(940, 3)
    assert i2vgen_pipe.scheduler is original
    a = float(original.alphas_cumprod[939])
    want = cil.initial_latents(1, 32, 32, 2, 3, torch.Generator().manual_seed(0))
    assert want.shape == (1, 4, 2, 16, 16)  # I2VGen-XL's (B, C, F, h, w)
    assert_close(seen["latents"], want, rtol=1e-6, atol=1e-6)
    mean = stats.mean.permute(1, 0, 2, 3).unsqueeze(0)
    z = (want - a**0.5 * mean) / (1 - a + a * stats.tr_cov_over_d) ** 0.5
    assert abs(float(z.std()) - 1) < 0.1


def test_i2vgenxl_baseline_equals_stock_with_the_same_embeddings(i2vgen_pipe, image):
    """fix=False is the stock pipeline; the transformers-5 clip_skip shim reproduces clip_skip=1 embeddings."""
    cil = wrap_pipeline(i2vgen_pipe, M=940)
    kw = dict(prompt="a square", image=image, **KW)
    torch.manual_seed(0)
    a = cil.baseline(generator=torch.Generator().manual_seed(0), **kw).frames
    te = i2vgen_pipe.text_encoder
    ids = i2vgen_pipe.tokenizer(
        ["a square"], padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    ).input_ids
    uncond = i2vgen_pipe.tokenizer(
        [""], padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        emb = te.final_layer_norm(te(ids, output_hidden_states=True).hidden_states[-2])
        neg = te.final_layer_norm(te(uncond, output_hidden_states=True).hidden_states[-2])
    torch.manual_seed(0)
    b = i2vgen_pipe(
        image=image,
        prompt_embeds=emb,
        negative_prompt_embeds=neg,
        generator=torch.Generator().manual_seed(0),
        **{k: v for k, v in KW.items()},
    ).frames
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="integer timestep"):
        CILPipeline(i2vgen_pipe, M=940.5)


def test_generate_video_helper(svd_pipe, image):
    cil = wrap_pipeline(svd_pipe, M=100.0, stats=_stats())
    cfg = GenerationConfig(32, 32, 2, steps=2, guidance=2.0, fps=4, motion_bucket_id=30)
    kw = pipeline_kwargs("svd", cfg)
    assert kw["max_guidance_scale"] == 2.0
    assert kw["fps"] == 4
    assert "prompt" not in kw
    v1 = generate_video(cil, image, cfg, seed=1)
    v2 = generate_video(cil, image, cfg, seed=1)
    assert v1.shape == (2, 3, 32, 32)
    assert torch.equal(v1, v2)
    assert "guidance_scale" in pipeline_kwargs(
        "i2vgenxl", GenerationConfig(32, 32, 2, 2, guidance=9.0, prompt="x")
    )
