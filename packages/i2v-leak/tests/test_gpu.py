"""CUDA paths (skipped without a GPU): half precision, VAE slicing, CPU offload, bf16 fine-tuning."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")

pytestmark = pytest.mark.gpu


def _stats():
    from i2v_leak.stats import LatentStats

    return LatentStats(
        torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.3, 0.5, 32, 32, 2
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_wrapped_svd_in_half_precision(dtype, image):
    from i2v_leak.adapters import wrap_pipeline
    from i2v_leak.loading import LoadOptions, load_pipeline

    pipe = load_pipeline("svd", "tiny", "cuda", LoadOptions(dtype=dtype))
    cil = wrap_pipeline(pipe, M=100.0, stats=_stats())
    kw = dict(height=32, width=32, num_frames=2, num_inference_steps=3, output_type="pt")
    out = cil(image, generator=torch.Generator().manual_seed(0), **kw).frames
    assert out.shape == (1, 2, 3, 32, 32)
    assert torch.isfinite(out.float()).all()
    # the start is drawn on the CPU generator: the same on any device
    x_gpu = cil.initial_latents(1, 32, 32, 2, 3, torch.Generator().manual_seed(1))
    assert x_gpu.device.type == "cpu"


def test_i2vgenxl_with_vae_slicing_and_cpu_offload(image):
    from i2v_leak.adapters import wrap_pipeline
    from i2v_leak.loading import LoadOptions, load_pipeline

    pipe = load_pipeline(
        "i2vgenxl", "tiny", "cuda", LoadOptions(dtype="float16", vae_slicing=True, cpu_offload=True)
    )
    cil = wrap_pipeline(pipe, M=940, stats=_stats())
    torch.manual_seed(0)
    out = cil(
        prompt="a square",
        image=image,
        height=32,
        width=32,
        num_frames=2,
        num_inference_steps=3,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
    ).frames
    assert torch.isfinite(out.float()).all()


def test_finetune_bf16_on_cuda(tmp_path):
    from i2v_leak.training import SVDFinetuneConfig, finetune_svd
    from i2v_leak.video_io import synthetic_clips

    from gen_common.testing.video_tiny import tiny_svd_pipeline
    from gen_common.training import TrainConfig

    pipe = tiny_svd_pipeline(seed=0)
    clips = list(synthetic_clips(2, 2, 32, 32, torch.Generator().manual_seed(0)))
    res = finetune_svd(
        pipe,
        clips,
        SVDFinetuneConfig(),
        TrainConfig(steps=2, lr=1e-4, mixed_precision="bf16", log_every=1),
        out_dir=tmp_path,
        device="cuda",
        progress=False,
    )
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in res.history)
