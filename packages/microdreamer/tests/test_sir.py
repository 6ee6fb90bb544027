"""SIR's targets, the call counter, the analytic denoiser, and the toy acceptance: SIR vs SDS."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from microdreamer.cameras import orbit_cameras
from microdreamer.ddim import DDIMGrid
from microdreamer.denoisers import AnalyticDenoiser, CallCounter, _gaussian_eps
from microdreamer.gaussians import GaussianModel
from microdreamer.presets import get_preset
from microdreamer.sir import run_sir, sir_targets
from microdreamer.toy import toy_denoiser, toy_scene


class _Zero:
    """ε ≡ 0 stand-in that records what was asked (the counter logic lives in the adapters)."""

    family = "analytic"

    def __init__(self):
        self.counter = CallCounter()
        self.alphas_cumprod = DDIMGrid(20).alphas_cumprod
        self.asked = []

    def encode(self, x):
        return x

    def decode(self, x):
        return x

    def eps(self, latents, t, cameras, *, guidance_scale, uncond_only=False, doubled=True, phase="sample"):
        self.asked.append((phase, t))
        self.counter.record(phase, doubled or not uncond_only)
        return torch.zeros_like(latents)


def _noise(x):
    return torch.zeros_like(x)


@pytest.mark.parametrize(("official", "expected"), [(False, 8 + 19 * 2), (True, 8 * 2 + 19 * 2)])
def test_counter_counts_inversion_and_cfg(official, expected):
    d, g = _Zero(), DDIMGrid(20)
    cams = orbit_cameras([0.0], [0.0], size=4)
    kw = dict(grid=g, t2=901, t1=501, guidance_scale=3, eta=0.5, noise=_noise)
    sir_targets(d, torch.zeros(1, 3, 4, 4), cams, init=False, doubled_inversion=official, **kw)
    inv = [t for p, t in d.asked if p == "inversion"]
    smp = [t for p, t in d.asked if p == "sample"]
    assert inv == list(range(501, 901, 50))  # ε at 501..851 carries the latent up to 901
    assert smp == list(range(901, 0, -50))  # DDIM back from t2 = 901 to 0
    assert d.counter.nfe == expected and d.counter.calls == 8 + 19
    d.counter.reset()
    sir_targets(d, torch.zeros(1, 3, 4, 4), cams, init=True, **kw)
    assert d.counter.nfe == 40 and d.counter.by_phase == {"sample": 40}  # the initial full chain from noise


def test_gaussian_eps_is_the_posterior_mean():
    # Monte Carlo: E[ε | x_t] for x0 ~ N(m, v), estimated by binning, matches the closed form
    gen = torch.Generator().manual_seed(0)
    a, m, v = 0.4, 0.3, 0.2
    x0 = m + v**0.5 * torch.randn(400_000, generator=gen, dtype=torch.float64)
    eps = torch.randn(400_000, generator=gen, dtype=torch.float64)
    xt = a**0.5 * x0 + (1 - a) ** 0.5 * eps
    sel = (xt - 0.5).abs() < 0.01
    closed = _gaussian_eps(torch.tensor(0.5, dtype=torch.float64), a, torch.tensor(m), torch.tensor(v))
    assert eps[sel].mean().item() == pytest.approx(closed.item(), abs=0.02)


def test_exact_denoiser_targets_are_the_true_views():
    den = AnalyticDenoiser(toy_scene(num=6), data_std=1e-4, uncond="same")
    cams = orbit_cameras([0.0, 20.0], [30.0, 150.0], size=12)
    g = DDIMGrid(10)
    gen = torch.Generator().manual_seed(0)
    noise = lambda x: torch.randn(x.shape, generator=gen)  # noqa: E731
    renders = torch.rand(2, 3, 12, 12, generator=gen)
    tgt = sir_targets(
        den, renders, cams, grid=g, t2=801, t1=401, guidance_scale=3.0, eta=0.5, init=False, noise=noise
    )
    # x̂₀ is the true view at every step; what is left is the release's last step ending at ᾱ = ᾱ₀ = 0.99915
    # (set_alpha_to_one = False): a residual √(1 − ᾱ₀)·ε̂ ≈ 0.03·ε in [-1, 1] units
    err = (tgt - den.target(cams)).abs()
    assert err.mean() < 0.015 and err.max() < 0.1
    assert (renders - den.target(cams)).abs().mean() > 0.1  # the renders were far from it


def test_targets_return_to_the_render_size_bicubically():
    # a latent denoiser whose VAE halves the size: the decoded target goes back to the render size as all three
    # releases' train_step do it, F.interpolate(target_img, (H, W), mode="bicubic")
    class HalfSize(AnalyticDenoiser):
        def encode(self, images):
            return F.avg_pool2d(images, 2) * 2 - 1

        def decode(self, latents):
            decoded.append(super().decode(latents))
            return decoded[-1]

        def eps(self, x, t, cameras, **kw):
            return torch.zeros_like(x)

    decoded = []
    den = HalfSize(toy_scene(num=6))
    cams = orbit_cameras([0.0, 20.0], [30.0, 150.0], size=16)
    renders = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    tgt = sir_targets(
        den, renders, cams, grid=DDIMGrid(10), t2=601, t1=301, guidance_scale=1.0, eta=0.0, init=False,
        noise=torch.zeros_like,
    )  # fmt: skip
    (small,) = decoded
    assert small.shape[-1] == 8 and tgt.shape == renders.shape
    assert torch.allclose(tgt, F.interpolate(small, (16, 16), mode="bicubic", align_corners=False))
    assert not torch.allclose(
        tgt, F.interpolate(small, (16, 16), mode="bilinear", align_corners=False), atol=1e-3
    )


def test_preset_must_match_denoiser():
    m = GaussianModel.blob(20, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="is for a zero123 denoiser"):
        run_sir(m, toy_denoiser(), get_preset("sai"))


def test_official_preset_counts_more_steps_and_doubled_inversion():
    p = get_preset("toy", render_size=12, num_pts=60, total_steps=3, inner_steps=2, init_steps=2)
    out = {}
    for official in (False, True):
        den = toy_denoiser()
        m = GaussianModel.blob(p.num_pts, generator=torch.Generator().manual_seed(0))
        r = run_sir(
            m, den, dataclasses.replace(p, official=official), generator=torch.Generator().manual_seed(0)
        )
        out[official] = (r.steps, den.counter.by_phase)
    assert out[False][0] == 2 + 2 * 2 and out[True][0] == 2 + 2 * 2 + 3  # +1 per outer iteration
    assert out[True][1]["inversion"] == 2 * out[False][1]["inversion"]
    assert out[True][1]["sample"] == out[False][1]["sample"]


def test_sir_needs_5x_fewer_diffusion_calls_than_sds():
    """Acceptance (the paper's 5–20×): on the toy, SIR reaches SDS's final held-out error with ≥ 5× fewer calls."""
    from microdreamer.demo import SMALL
    from microdreamer.runs import compare_toy

    from gen_common.cli import RunContext

    rep, _, _ = compare_toy(SMALL.__class__(**{**SMALL.__dict__, "plot": False}), RunContext())
    assert rep.sir_nfe_to_target is not None
    assert rep.sds_nfe >= 5 * rep.sir_nfe_to_target
    assert rep.sir_final_error < rep.target_error < rep.initial_error
