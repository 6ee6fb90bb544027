"""On CUDA: the tiny pipelines run on the GPU and the metrics give the CPU's numbers (skipped without CUDA)."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu


def test_tiny_pipelines_run_on_cuda():
    pytest.importorskip("diffusers")
    pytest.importorskip("open_clip")
    from gen_common.testing.controlnet_tiny import tiny_control_image, tiny_controlnet_pipeline
    from gen_common.testing.sdxl_tiny import tiny_sdxl_pipeline

    kw = dict(num_inference_steps=2, height=32, width=32, output_type="np")
    cn = tiny_controlnet_pipeline(device="cuda")
    a = cn("a cat", image=tiny_control_image(), generator=torch.Generator("cuda").manual_seed(0), **kw).images
    xl = tiny_sdxl_pipeline(device="cuda")
    b = xl("a cat", generator=torch.Generator("cuda").manual_seed(0), **kw).images
    assert a.shape == b.shape == (1, 32, 32, 3)


def test_metrics_on_cuda_match_the_cpu():
    pytest.importorskip("scipy")
    from gen_common.metrics import extract_features, fid

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ext = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, stride=2), torch.nn.Flatten(2))
    pool = torch.nn.Sequential(ext, torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten(1))
    x = torch.rand(32, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    y = torch.rand(32, 3, 16, 16, generator=torch.Generator().manual_seed(1)) ** 2
    cpu = fid(x, y, pool)
    gpu = fid(x, y, pool.to("cuda"))
    assert extract_features(x, pool).shape == (32, 6)
    assert gpu == pytest.approx(cpu, rel=1e-3)
