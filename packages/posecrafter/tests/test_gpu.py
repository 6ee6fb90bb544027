"""GPU paths (skipped without CUDA): bf16 generation and a bf16 one-shot step on the tiny model."""

import numpy as np
import pytest
import torch
from posecrafter.loading import tiny_components
from posecrafter.pipeline import GenerationConfig, PoseCrafterPipeline
from posecrafter.render import synthetic_clip, synthetic_pose_sequence
from posecrafter.training import OneShotConfig, train_one_shot


@pytest.mark.gpu
def test_bf16_generation_and_training_on_cuda():
    pipe = PoseCrafterPipeline(tiny_components(0).to("cuda"))  # float32 master weights, bf16 autocast
    frames, poses = synthetic_clip(3, 32, 32)
    res = train_one_shot(
        pipe, frames, poses, "a person", OneShotConfig(steps=2, lr=1e-3), device="cuda", progress=False
    )
    assert np.isfinite(res.final_loss)
    pipe.c.to("cuda", torch.bfloat16)
    out = pipe(
        "a person",
        frames,
        poses,
        synthetic_pose_sequence(2, 32, 32, phase=1.0),
        GenerationConfig(num_inference_steps=3),
    )
    assert out.frames.shape == (2, 32, 32, 3) and out.latents.dtype == torch.float32


@pytest.mark.gpu
def test_bench_at_sd15_scale_on_cuda():
    from posecrafter.runs import BenchRun, bench

    rep = bench(BenchRun(model="sd15-random", frames=4, steps=2, train_steps=1, width=256, height=256))
    assert rep.ratios["checkpointing_peak_memory"] < 1.0  # checkpointing saves memory
