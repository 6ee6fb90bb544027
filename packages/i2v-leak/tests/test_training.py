"""SVD fine-tuning with TimeNoise runs offline on the tiny pipeline, changes the UNet, saves and resumes."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")

from i2v_leak.training import SVDFinetuneConfig, encode_condition, finetune_svd
from i2v_leak.video_io import synthetic_clips

from gen_common.training import TrainConfig


def test_two_steps_with_gradient_checkpointing_then_resume(tmp_path):
    from diffusers import UNetSpatioTemporalConditionModel

    from gen_common.testing.video_tiny import tiny_svd_pipeline

    pipe = tiny_svd_pipeline(seed=1)
    clips = list(synthetic_clips(3, 2, 32, 32, torch.Generator().manual_seed(0)))
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    vae_before = {k: v.clone() for k, v in pipe.vae.state_dict().items()}
    calls = []
    orig = pipe.unet.forward

    def spy(*a, **k):
        calls.append(pipe.unet.is_gradient_checkpointing)
        return orig(*a, **k)

    pipe.unet.forward = spy
    res = finetune_svd(
        pipe,
        clips,
        SVDFinetuneConfig(),
        TrainConfig(steps=2, lr=1e-3, log_every=1, mixed_precision="no"),
        out_dir=tmp_path,
        device="cpu",
        progress=False,
    )
    del pipe.unet.forward
    assert calls == [True, True]  # gradient checkpointing was on while training
    assert len(res.history) == 2
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in res.history)
    assert all(0 < h["beta_s_mean"] < 15 for h in res.history)
    changed = sum(float((before[k] - v).abs().sum()) for k, v in pipe.unet.state_dict().items())
    assert changed > 0
    assert all(torch.equal(vae_before[k], v) for k, v in pipe.vae.state_dict().items())  # frozen
    loaded = UNetSpatioTemporalConditionModel.from_pretrained(tmp_path / "unet")
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, pipe.unet.state_dict()[k]), k
    res2 = finetune_svd(
        pipe,
        clips,
        SVDFinetuneConfig(),
        TrainConfig(steps=3, lr=1e-3, log_every=1, mixed_precision="no"),
        out_dir=tmp_path,
        device="cpu",
        progress=False,
    )
    assert res2.resumed_from == 2
    assert res2.steps == 3


def test_condition_encoding_matches_the_pipeline(svd_pipe):
    """The training condition latent is the VAE mode of the first frame, as the pipeline concatenates it."""
    clip = synthetic_clips(1, 2, 32, 32, torch.Generator().manual_seed(0))
    cond, emb = encode_condition(svd_pipe, clip[:, 0])
    assert cond.shape == (1, 4, 16, 16)
    assert emb.shape == (1, 1, 32)
    ref = svd_pipe._encode_vae_image(clip[:, 0], "cpu", 1, False)
    assert torch.allclose(cond, ref, atol=1e-6)


def test_bad_clips_are_refused(svd_pipe):
    with pytest.raises(ValueError, match="one shape"):
        finetune_svd(
            svd_pipe,
            [torch.zeros(2, 3, 32, 32), torch.zeros(3, 3, 32, 32)],
            SVDFinetuneConfig(),
            TrainConfig(steps=1),
        )
    with pytest.raises(ValueError, match="no training clips"):
        finetune_svd(svd_pipe, [], SVDFinetuneConfig(), TrainConfig(steps=1))
