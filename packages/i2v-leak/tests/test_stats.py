"""Latent statistics: streaming moments, files that remember their size, official files, estimation via a VAE."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from i2v_leak.stats import LatentStats, RunningMoments, estimate_latent_stats

from gen_common.testing import assert_close


def test_streaming_moments_equal_the_batch_computation():
    x = torch.randn(37, 2, 3, 4, generator=torch.Generator().manual_seed(0)) * 2 + 0.5
    acc = RunningMoments()
    for i in range(0, 37, 5):
        acc.update(x[i : i + 5])
    xd = x.double()
    assert acc.count == 37
    assert_close(acc.mean, xd.mean(0), rtol=1e-12, atol=1e-12)
    assert_close(acc.second_moment, (xd**2).mean(0), rtol=1e-12)
    assert abs(acc.tr_cov_over_d() - float(xd.var(0, unbiased=False).mean())) < 1e-12
    with pytest.raises(ValueError, match="shape changed"):
        acc.update(torch.zeros(1, 2, 3, 5))
    with pytest.raises(ValueError, match="NaN"):
        acc.update(torch.full((1, 2, 3, 4), float("nan")))


def test_save_load_round_trip_keeps_the_size(tmp_path):
    s = LatentStats(
        torch.randn(2, 4, 5, 6), 0.37, height=40, width=48, num_frames=2, count=9, meta={"m": "tiny"}
    )
    p = s.save(tmp_path / "s.safetensors")
    t = LatentStats.load(p)
    assert torch.equal(t.mean, s.mean)
    assert (t.tr_cov_over_d, t.height, t.width, t.num_frames, t.count, t.meta) == (
        0.37,
        40,
        48,
        2,
        9,
        {"m": "tiny"},
    )
    with pytest.raises(FileExistsError, match="overwrite"):
        s.save(p)
    s.save(p, overwrite=True)
    with pytest.raises(ValueError, match="safetensors"):
        s.save(tmp_path / "s.pt")


def test_mismatched_resolution_says_what_to_do():
    s = LatentStats(torch.zeros(16, 4, 40, 64), 0.5, height=320, width=512, num_frames=16)
    s.check(320, 512, 16)
    with pytest.raises(ValueError) as err:
        s.check(576, 1024, 16)
    msg = str(err.value)
    assert "320×512" in msg
    assert "576×1024" in msg
    assert "i2v-leak stats --height 576 --width 1024 --num-frames 16" in msg
    with pytest.raises(ValueError, match="frame_pooled"):
        s.check(320, 512, 14)


def test_frame_pooling_keeps_the_kl_optimal_variance():
    """With the pooled mean m̄, the best isotropic variance is E‖x − m̄‖²/d; frame_pooled must return it."""
    x = torch.randn(500, 3, 2, 4, 4, generator=torch.Generator().manual_seed(1)) + torch.arange(3.0).view(
        1, 3, 1, 1, 1
    )
    acc = RunningMoments()
    acc.update(x)
    pooled = acc.stats(height=8, width=8, num_frames=3).frame_pooled()
    assert pooled.mean.shape == (1, 2, 4, 4)
    xd = x.double()
    want = float(((xd - xd.mean(dim=(0, 1), keepdim=True)) ** 2).mean())
    assert abs(pooled.tr_cov_over_d - want) < 1e-6
    pooled.check(8, 8, 14)  # any frame count is fine now
    m = pooled.mean_for((2, 14, 2, 4, 4))
    assert m.shape == (2, 14, 2, 4, 4)


def test_official_pt_files_load_weights_only(tmp_path):
    mean_cfhw = torch.randn(4, 16, 40, 64)
    p = tmp_path / "initial_noise_512.pt"
    torch.save({"Expectation_X0": mean_cfhw[None], "Tr_Cov_d": torch.tensor(0.81)}, p)
    s = LatentStats.load(p)
    assert s.mean.shape == (16, 4, 40, 64)
    assert torch.equal(s.mean, mean_cfhw.permute(1, 0, 2, 3))
    assert (s.height, s.width, s.num_frames) == (320, 512, 16)
    assert abs(s.tr_cov_over_d - 0.81) < 1e-6
    q = tmp_path / "svd.pt"
    torch.save({"Expectation_x_0": torch.randn(16, 4, 40, 64), "trCov_d": 0.5}, q)
    assert LatentStats.load(q).mean.shape == (16, 4, 40, 64)
    bad = tmp_path / "bad.pt"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(Exception, match="official Analytic-Init keys"):
        LatentStats.load(bad)
    with pytest.raises(FileNotFoundError, match="i2v-leak stats"):
        LatentStats.load(tmp_path / "missing.safetensors")
    evil = tmp_path / "evil.pt"
    torch.save({"Expectation_X0": mean_cfhw[None], "Tr_Cov_d": _Payload()}, evil)
    with pytest.raises(Exception, match="would run code"):
        LatentStats.load(evil)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


class _LinearVAE(torch.nn.Module):
    """A VAE stand-in with a known encoder: latent mode = 2·mean over 2×2 pixel blocks, posterior std 0."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.config = SimpleNamespace(scaling_factor=0.5)

    def encode(self, x):
        m = 2 * torch.nn.functional.avg_pool2d(x, 2)[:, :2]  # 2 latent channels
        return SimpleNamespace(latent_dist=SimpleNamespace(sample=lambda generator=None: m, mode=lambda: m))


def test_estimate_through_a_known_encoder():
    g = torch.Generator().manual_seed(0)
    clips = [torch.rand(3, 3, 4, 4, generator=g) * 2 - 1 for _ in range(7)]
    stats = estimate_latent_stats(_LinearVAE(), iter(clips), height=4, width=4, num_frames=3, progress=False)
    z = torch.stack([2 * torch.nn.functional.avg_pool2d(c, 2)[:, :2] * 0.5 for c in clips]).double()
    assert stats.count == 7
    assert stats.mean.shape == (3, 2, 2, 2)
    assert_close(stats.mean, z.mean(0), rtol=1e-6, atol=1e-7)
    assert abs(stats.tr_cov_over_d - float(z.var(0, unbiased=False).mean())) < 1e-7
    assert (stats.height, stats.width, stats.num_frames) == (4, 4, 3)
    # max_videos counts clips, also when they come in batches: 7 clips as batches of 3, 3, 1, limit 4
    batches = [torch.stack(clips[i : i + 3]) for i in range(0, 7, 3)]
    four = estimate_latent_stats(
        _LinearVAE(), iter(batches), height=4, width=4, num_frames=3, max_videos=4, progress=False
    )
    assert four.count == 4
    assert_close(four.mean, z[:4].mean(0), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="expected"):
        estimate_latent_stats(_LinearVAE(), iter([torch.zeros(2, 3, 4, 4)]), height=4, width=4, num_frames=3)
    with pytest.raises(ValueError, match="no videos"):
        estimate_latent_stats(_LinearVAE(), iter([]), height=4, width=4, num_frames=3)


def test_estimate_with_the_tiny_svd_vae(svd_pipe):
    from i2v_leak.video_io import synthetic_clips

    clips = synthetic_clips(6, 2, 32, 32, torch.Generator().manual_seed(0))
    s1 = estimate_latent_stats(
        svd_pipe,
        iter(clips),
        height=32,
        width=32,
        num_frames=2,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    s2 = estimate_latent_stats(
        svd_pipe,
        iter(clips),
        height=32,
        width=32,
        num_frames=2,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    assert s1.mean.shape == (2, 4, 16, 16)
    assert s1.count == 6
    assert torch.equal(s1.mean, s2.mean)
    assert s1.tr_cov_over_d > 0
    assert s1.tr_cov_over_d == s2.tr_cov_over_d  # same clips, same VAE noise: the same statistics
    assert s1.meta["scaling_factor"] == svd_pipe.vae.config.scaling_factor
