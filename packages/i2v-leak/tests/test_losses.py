"""Training losses: the condition gets TimeNoise where the paper puts it, and a perfect model has zero loss."""

from __future__ import annotations

import math

import pytest
import torch
from i2v_leak.losses import ddpm_timenoise_loss, edm_v_preconditioning, svd_timenoise_loss
from i2v_leak.timenoise import TimeNoise
from i2v_leak.toy import scaled_linear_alphas_cumprod

from gen_common.testing import assert_close


class RecordingUNet(torch.nn.Module):
    """Stands in for the SVD UNet: records its inputs and, knowing x₀, returns the output that denoises exactly."""

    def __init__(self, x0: torch.Tensor):
        super().__init__()
        self.x0 = x0
        self.p = torch.nn.Parameter(torch.zeros(()))
        self.seen: dict[str, torch.Tensor] = {}

    def forward(self, model_in, c_noise, encoder_hidden_states, added_time_ids, return_dict=False):
        self.seen = dict(model_in=model_in, c_noise=c_noise, emb=encoder_hidden_states, ids=added_time_ids)
        sigma = (4 * c_noise).exp().view(-1, 1, 1, 1, 1)  # c_noise = ¼ ln σ
        c_skip, c_out, c_in, _ = edm_v_preconditioning(sigma)
        noisy = model_in[:, :, :4] / c_in
        return ((self.x0 - c_skip * noisy) / c_out + 0 * self.p,)


def test_edm_preconditioning_matches_diffusers_euler_v_prediction():
    pytest.importorskip("diffusers")
    from gen_common.testing.video_tiny import tiny_svd_scheduler

    s = tiny_svd_scheduler()
    s.set_timesteps(5)
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 10
    out = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    sigma = s.sigmas[0]
    t = s.timesteps[0]
    c_skip, c_out, c_in, c_noise = edm_v_preconditioning(sigma.double())
    assert_close(t.double(), c_noise, rtol=1e-6)
    assert_close(s.scale_model_input(x, t), x * c_in, rtol=1e-5)
    x0 = s.step(out, t, x).pred_original_sample
    assert_close(x0, c_skip * x + c_out * out, rtol=1e-5, atol=1e-5)


def _svd_batch(b=4, f=3):
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(b, f, 4, 6, 6, generator=g),
        torch.randn(b, 4, 6, 6, generator=g),
        torch.randn(b, 1, 8, generator=g),
    )


def test_svd_loss_noises_the_condition_latent_with_timenoise_and_feeds_beta():
    latents, cond, emb = _svd_batch()
    unet = RecordingUNet(latents)
    tn = TimeNoise(15.0, 5.0, 1.0)
    loss, metrics = svd_timenoise_loss(
        unet,
        latents,
        cond,
        emb,
        tn,
        torch.Generator().manual_seed(3),
        fps_id=2,
        motion_bucket_id=20,
        cfg_dropout=0.0,
    )
    assert loss.item() < 1e-8  # the exact denoiser: the preconditioning is consistent
    ids = unet.seen["ids"]
    assert torch.equal(ids[:, 0], torch.full((4,), 2.0))
    assert torch.equal(ids[:, 1], torch.full((4,), 20.0))
    beta = ids[:, 2]
    assert float(beta.min()) > 0
    assert float(beta.max()) < 15
    assert metrics["beta_s_mean"] == pytest.approx(float(beta.mean()))
    cond_in = unet.seen["model_in"][:, :, 4:]
    # the same noisy condition for every frame, equal to c + β_s ε with unit-variance ε per element
    assert torch.equal(cond_in[:, 0], cond_in[:, -1])
    eps = (cond_in[:, 0] - cond) / beta.view(4, 1, 1, 1)
    assert_close(eps.flatten(1).std(1), torch.ones(4), rtol=0.35)
    # TimeNoise's t is σ/700: the drawn β_s follow from σ through the same generator stream
    sigma = (4 * unet.seen["c_noise"]).exp()
    assert (sigma > 0).all()


def test_svd_loss_without_timenoise_keeps_the_condition_clean():
    latents, cond, emb = _svd_batch()
    unet = RecordingUNet(latents)
    svd_timenoise_loss(unet, latents, cond, emb, None, torch.Generator().manual_seed(3), cfg_dropout=0.0)
    assert torch.equal(unet.seen["model_in"][:, 1, 4:], cond)
    assert torch.equal(unet.seen["ids"][:, 2], torch.zeros(4))


def test_svd_loss_cfg_dropout_zeroes_condition_and_embedding_together():
    latents, cond, emb = _svd_batch(b=64, f=1)
    unet = RecordingUNet(latents)
    svd_timenoise_loss(
        unet, latents, cond, emb, TimeNoise(15.0, 5.0), torch.Generator().manual_seed(4), cfg_dropout=0.5
    )
    dropped_cond = unet.seen["model_in"][:, 0, 4:].flatten(1).abs().sum(1) == 0
    dropped_emb = unet.seen["emb"].flatten(1).abs().sum(1) == 0
    assert torch.equal(dropped_cond, dropped_emb)
    assert 10 < int(dropped_cond.sum()) < 54


def test_svd_loss_weighting_is_edm():
    """A model that outputs 0 leaves D = c_skip·x_σ; the loss must be mean((σ²+1)/σ² · (c_skip x_σ − x₀)²)."""
    latents, cond, emb = _svd_batch(b=2, f=1)

    class Zero(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(()))
            self.seen = None

        def forward(self, model_in, c_noise, encoder_hidden_states, added_time_ids, return_dict=False):
            self.seen = (model_in, c_noise)
            return (torch.zeros_like(model_in[:, :, :4]) + 0 * self.p,)

    z = Zero()
    loss, _ = svd_timenoise_loss(
        z, latents, cond, emb, None, torch.Generator().manual_seed(5), cfg_dropout=0.0
    )
    model_in, c_noise = z.seen
    sigma = (4 * c_noise).exp().view(2, 1, 1, 1, 1)
    c_skip, _, c_in, _ = edm_v_preconditioning(sigma)
    noisy = model_in[:, :, :4] / c_in
    want = ((sigma**2 + 1) / sigma**2 * (c_skip * noisy - latents) ** 2).mean()
    assert_close(loss, want, rtol=1e-5)
    # the official class default σ_d = 0.5 in the weight only (same draws: same generator seed)
    loss_half, _ = svd_timenoise_loss(
        z, latents, cond, emb, None, torch.Generator().manual_seed(5), cfg_dropout=0.0, weight_sigma_data=0.5
    )
    want_half = ((sigma**2 + 0.25) / (0.25 * sigma**2) * (c_skip * noisy - latents) ** 2).mean()
    assert_close(loss_half, want_half, rtol=1e-5)
    assert float(loss_half.detach()) > float(loss.detach())
    with pytest.raises(ValueError, match="weight_sigma_data"):
        svd_timenoise_loss(z, latents, cond, emb, None, weight_sigma_data=0.0)


def test_svd_loss_shape_errors():
    latents, cond, emb = _svd_batch()
    with pytest.raises(ValueError, match="cond_latents"):
        svd_timenoise_loss(RecordingUNet(latents), latents, cond[:, :2], emb, None)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ddpm_loss_is_zero_for_the_exact_model_and_noises_the_condition(prediction_type):
    ac = scaled_linear_alphas_cumprod(1000).float()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(8, 4, 3, 5, 5, generator=g)
    cond = torch.randn(8, 16, 32, generator=g)  # e.g. VideoCrafter1's CLIP image tokens
    seen = {}

    def model(xt, t, c):
        seen["t"], seen["c"] = t, c
        a = ac[t].view(-1, 1, 1, 1, 1)
        eps = (xt - a.sqrt() * x0) / (1 - a).sqrt()
        return eps if prediction_type == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * x0

    loss, metrics = ddpm_timenoise_loss(
        model, x0, cond, ac, TimeNoise(100.0, 5.0), g, prediction_type=prediction_type
    )
    assert loss.item() < 1e-8
    assert seen["c"].shape == cond.shape
    assert not torch.equal(seen["c"], cond)
    assert int(seen["t"].min()) >= 0
    assert int(seen["t"].max()) < 1000
    assert 0 < metrics["beta_s_mean"] < 100
    loss0, m0 = ddpm_timenoise_loss(model, x0, cond, ac, None, g, prediction_type=prediction_type)
    assert torch.equal(seen["c"], cond)
    assert m0["beta_s_mean"] == 0
    with pytest.raises(ValueError, match="prediction_type"):
        ddpm_timenoise_loss(model, x0, cond, ac, None, g, prediction_type="sample")
    assert math.isfinite(loss0.item())
