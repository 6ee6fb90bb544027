"""Analytic-Init (Eq. 5) on exact low-dimensional toys: it beats N(0, I) at every start, it is the KL optimum,
it is N(0, I) at zero terminal SNR, and the VP and VE forms agree."""

from __future__ import annotations

import math

import pytest
import torch
from i2v_leak.analytic_init import (
    analytic_init_moments_ve,
    analytic_init_moments_vp,
    analytic_init_ve,
    analytic_init_vp,
    kl_gaussian_to_isotropic,
)
from i2v_leak.stats import LatentStats
from i2v_leak.toy import GaussianToy, MixtureToy, scaled_linear_alphas_cumprod, zero_terminal_snr

from gen_common.testing import assert_close, assert_within_sigmas

T = 1000
ALPHAS = scaled_linear_alphas_cumprod(T)
TOYS = {"gaussian": GaussianToy.random(4, seed=0), "mixture": MixtureToy.default()}


def _dim(toy) -> int:
    return toy.d if isinstance(toy, GaussianToy) else 1


def test_gaussian_kl_helper_matches_torch_distributions():
    toy = GaussianToy.random(3, seed=2)
    mu, s2 = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64), 1.7
    p = torch.distributions.MultivariateNormal(toy.mean, toy.cov)
    q = torch.distributions.MultivariateNormal(mu, s2 * torch.eye(3, dtype=torch.float64))
    assert_close(
        kl_gaussian_to_isotropic(toy.mean, toy.cov, mu, s2),
        torch.distributions.kl_divergence(p, q),
        rtol=1e-12,
    )


def test_mixture_kl_is_exact_when_the_mixture_is_one_gaussian():
    """With one component the quadrature KL must equal the closed form."""
    f = torch.float64
    one = MixtureToy(torch.tensor([1.0], dtype=f), torch.tensor([0.7], dtype=f), torch.tensor([0.4], dtype=f))
    g = GaussianToy(torch.tensor([0.7], dtype=f), torch.tensor([[0.16]], dtype=f))
    for a in (0.9, 0.3, 0.01):
        mu, s2 = torch.tensor([0.2], dtype=f), 0.8
        assert_close(one.kl_vp(a, mu, s2), g.kl_vp(a, mu, s2), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("name", sorted(TOYS))
def test_analytic_init_beats_standard_normal_at_every_start(name):
    """KL(q(x_M) ‖ Analytic-Init) < KL(q(x_M) ‖ N(0, I)) for every M = 1..T (ᾱ at the first step M − 1)."""
    toy = TOYS[name]
    zero = torch.zeros(_dim(toy), dtype=torch.float64)
    worse = []
    for M in range(1, T + 1):
        a = float(ALPHAS[M - 1])
        mu, var = toy.analytic_vp(a)
        kl_ai, kl_std = float(toy.kl_vp(a, mu, var)), float(toy.kl_vp(a, zero, 1.0))
        if not (kl_ai < kl_std and kl_ai >= -1e-9):
            worse.append((M, kl_ai, kl_std))
    assert not worse, worse[:5]


@pytest.mark.parametrize("name", sorted(TOYS))
@pytest.mark.parametrize("form", ["vp", "ve"])
def test_analytic_moments_are_the_kl_optimum(name, form):
    """∂KL/∂μ = 0 and ∂KL/∂σ² = 0 at the moment-matched (μ, σ²), and moving away raises the KL."""
    toy = TOYS[name]
    for level in (0.95, 0.5, 0.05) if form == "vp" else (0.3, 3.0, 100.0):
        mu0, var0 = toy.analytic_vp(level) if form == "vp" else toy.analytic_ve(level)
        mu = mu0.detach().clone().requires_grad_(True)
        var = torch.tensor(var0, dtype=torch.float64, requires_grad=True)
        kl = toy.kl_vp(level, mu, var) if form == "vp" else toy.kl_ve(level, mu, var)
        g_mu, g_var = torch.autograd.grad(kl, (mu, var))
        scale = 1.0 / var0  # gradients are O(1/σ²)
        assert float(g_mu.abs().max()) < 1e-9 * max(1.0, scale)
        assert abs(float(g_var)) < 1e-9 * max(1.0, scale**2)
        with torch.no_grad():
            for dmu, dvar in ((0.05, 0.0), (-0.05, 0.0), (0.0, 0.05 * var0), (0.0, -0.05 * var0)):
                kl2 = (toy.kl_vp if form == "vp" else toy.kl_ve)(level, mu0 + dmu, var0 + dvar)
                assert float(kl2) > float(kl)


def test_zero_terminal_snr_reduces_to_standard_normal():
    zt = zero_terminal_snr(ALPHAS)
    assert float(zt[-1]) == 0.0
    stats = TOYS["gaussian"].stats()
    mu, var = analytic_init_moments_vp(stats.mean, stats.tr_cov_over_d, float(zt[-1]))
    assert float(mu.abs().max()) == 0.0
    assert var == 1.0
    shape = (3, 4)
    x = analytic_init_vp(stats, 0.0, shape, torch.Generator().manual_seed(5))
    assert torch.equal(x, torch.randn(shape, generator=torch.Generator().manual_seed(5)))


def test_zero_terminal_snr_in_diffusers_scheduler():
    diffusers = pytest.importorskip("diffusers")
    s = diffusers.DDIMScheduler(rescale_betas_zero_snr=True, beta_schedule="scaled_linear")
    a_T = float(s.alphas_cumprod[-1])
    assert a_T < 1e-7
    _, var = analytic_init_moments_vp(torch.zeros(1), 0.3, a_T)
    assert abs(var - 1.0) < 1e-6


def test_vp_and_ve_forms_agree_under_rescaling():
    """x_VP/√ᾱ is the VE variable at σ = √((1 − ᾱ)/ᾱ): the two Analytic-Init draws must coincide."""
    stats = LatentStats(torch.randn(2, 4, 3, 3, generator=torch.Generator().manual_seed(0)), 0.6)
    shape = (5, 2, 4, 3, 3)
    for a in (0.9, 0.2, 0.003):
        vp = analytic_init_vp(stats, a, shape, torch.Generator().manual_seed(1))
        ve = analytic_init_ve(stats, math.sqrt((1 - a) / a), shape, torch.Generator().manual_seed(1))
        assert_close(vp / math.sqrt(a), ve, rtol=1e-4, atol=1e-5)


def test_draws_have_the_analytic_moments():
    stats = LatentStats(torch.tensor([[0.5, -1.0]]), 0.25)
    a = 0.4
    x = analytic_init_vp(stats, a, (20000, 1, 2), torch.Generator().manual_seed(3))
    mu, var = analytic_init_moments_vp(stats.mean, stats.tr_cov_over_d, a)
    n = x.shape[0]
    for j in range(2):
        col = x[:, 0, j].double()
        assert_within_sigmas(float(col.mean()), float(mu[0, j]), math.sqrt(var / n))
        assert_within_sigmas(float(col.var()), var, var * math.sqrt(2 / (n - 1)))


def test_official_svd_plus_one_variance_is_worse():
    """The official SVD pipeline uses σ_p² = σ_max² + 1 + tr(Cov)/d; σ_max² + tr(Cov)/d has lower KL."""
    toy = TOYS["gaussian"]
    for sigma in (1.0, 5.0, 100.0):
        mu, var = toy.analytic_ve(sigma)
        assert float(toy.kl_ve(sigma, mu, var)) < float(toy.kl_ve(sigma, mu, var + 1.0))


def test_layouts_and_shape_errors():
    mean = torch.arange(2 * 4 * 3 * 3, dtype=torch.float32).reshape(2, 4, 3, 3)  # (F, C, h, w)
    stats = LatentStats(mean, 0.0)
    x = analytic_init_ve(stats, 0.0, (1, 4, 2, 3, 3), layout="BCFHW")
    assert torch.equal(x[0], mean.permute(1, 0, 2, 3))
    y = analytic_init_ve(stats, 0.0, (1, 2, 4, 3, 3))
    assert torch.equal(y[0], mean)
    with pytest.raises(ValueError, match="estimate statistics at this size"):
        analytic_init_ve(stats, 1.0, (1, 2, 4, 6, 6))
    with pytest.raises(ValueError, match="alpha_bar_M"):
        analytic_init_moments_vp(mean, 0.1, 1.5)
    with pytest.raises(ValueError, match="sigma"):
        analytic_init_moments_ve(mean, 0.1, -1.0)
