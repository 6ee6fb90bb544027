"""TimeNoise (Eqs. 6–7): support, median, monotonicity in t, and where the noise goes."""

from __future__ import annotations

import math

import pytest
import torch
from i2v_leak.presets import get_preset
from i2v_leak.timenoise import TimeNoise

from gen_common.testing import assert_close, assert_within_sigmas

PRESET_NOISES = [get_preset(n).timenoise() for n in ("svd", "dynamicrafter")] + [TimeNoise(100.0, 0.1, 4.0)]


@pytest.mark.parametrize("tn", PRESET_NOISES)
def test_samples_lie_strictly_inside_zero_beta_m(tn):
    t = torch.rand(200_000, generator=torch.Generator().manual_seed(0))
    t[:2] = torch.tensor([0.0, 1.0])
    b = tn.sample(t, torch.Generator().manual_seed(1))
    assert b.shape == t.shape
    assert float(b.min()) > 0.0
    assert float(b.max()) < tn.beta_m


@pytest.mark.parametrize("tn", PRESET_NOISES)
@pytest.mark.parametrize("t", [0.0, 0.5, 0.8, 1.0])
def test_empirical_median_is_beta_m_sigmoid_mu(tn, t):
    n = 40_000
    b = tn.sample(torch.full((n,), t), torch.Generator().manual_seed(2))
    med = float(tn.median(t))
    assert_close(
        tn.median(t),
        tn.beta_m * torch.sigmoid(torch.tensor(2 * tn.mu_max * t**tn.a - tn.mu_max, dtype=torch.float64)),
    )
    frac_below = float((b <= med).double().mean())
    assert_within_sigmas(frac_below, 0.5, math.sqrt(0.25 / n))


@pytest.mark.parametrize("tn", PRESET_NOISES)
def test_quantiles_increase_with_t(tn):
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    for q in (0.05, 0.5, 0.95):
        v = tn.quantile(q, t)
        assert (v[1:] >= v[:-1]).all()
        assert float(v[-1]) > float(v[0])
    # and stochastically: the mean of β_s grows between t = 0.5 and t = 1
    g = torch.Generator().manual_seed(3)
    lo = tn.sample(torch.full((20000,), 0.5), g).double()
    hi = tn.sample(torch.full((20000,), 1.0), g).double()
    assert float(hi.mean() - lo.mean()) > 5 * math.sqrt(float(lo.var() + hi.var()) / 20000)


def test_cdf_inverts_quantile_and_matches_samples():
    tn = TimeNoise(15.0, 5.0, 1.0)
    for q in (0.1, 0.5, 0.9):
        assert_close(tn.cdf(tn.quantile(q, 0.7), 0.7), torch.tensor(q, dtype=torch.float64), rtol=1e-9)
    b = tn.sample(torch.full((50_000,), 0.7), torch.Generator().manual_seed(4)).double()
    for x in (2.0, 6.0, 11.0):
        p = float(tn.cdf(x, 0.7))
        assert_within_sigmas(float((b <= x).double().mean()), p, math.sqrt(p * (1 - p) / b.numel()))
    assert float(tn.cdf(0.0, 0.5)) == 0.0
    assert float(tn.cdf(15.0, 0.5)) == 1.0
    # the density integrates to one
    grid = torch.linspace(1e-6, 15.0 - 1e-6, 200_001, dtype=torch.float64)
    assert_close(torch.trapezoid(tn.pdf(grid, 0.7), grid), torch.tensor(1.0, dtype=torch.float64), rtol=1e-4)


def test_mu_endpoints():
    tn = TimeNoise(100.0, 5.0, 1.0)
    assert float(tn.mu(0.0)) == -1.0
    assert float(tn.mu(1.0)) == 1.0
    assert float(TimeNoise(100.0, 5.0, 4.0).mu(1.0)) == 4.0


def test_apply_adds_beta_times_unit_noise_per_sample():
    tn = TimeNoise(15.0, 5.0, 1.0)
    cond = torch.randn(6, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    noisy, beta = tn.apply(cond, t, torch.Generator().manual_seed(1))
    assert noisy.shape == cond.shape
    assert beta.shape == (6,)
    eps = (noisy - cond) / beta.view(6, 1, 1, 1)
    # one β per sample, unit-variance per-element noise (not one scalar per sample)
    per_sample_std = eps.flatten(1).std(1)
    assert_close(per_sample_std, torch.ones(6), rtol=0.2)
    assert float(eps.flatten(1).var(1).min()) > 0.5
    same, _ = tn.apply(cond, t, torch.Generator().manual_seed(1))
    assert torch.equal(same, noisy)
    _fixed, b2 = tn.apply(cond, 0.5, torch.Generator().manual_seed(1), beta=torch.full((6,), 2.0))
    assert torch.equal(b2, torch.full((6,), 2.0))
    with pytest.raises(ValueError, match="entries"):
        tn.apply(cond, torch.zeros(3))


def test_bad_parameters_are_refused():
    for kw in ({"beta_m": 0.0}, {"a": -1.0}, {"s": 0.0}, {"mu_max": float("nan")}):
        with pytest.raises(ValueError):
            TimeNoise(**{**dict(beta_m=1.0, a=1.0, mu_max=1.0), **kw})
