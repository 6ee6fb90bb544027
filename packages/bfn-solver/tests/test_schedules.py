"""Schedules: closed forms, SDE coefficients against finite differences, BFN accuracies, forward samplers."""

import math

import pytest
import torch
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule, time_grid

from gen_common.testing import assert_close


def test_continuous_closed_forms_and_lambda_inverse():
    s = ContinuousSchedule(0.001)
    t = torch.linspace(0.01, 1.0, 50, dtype=torch.float64)
    g = s.gamma(t)
    assert_close(g, 1 - 0.001 ** (2 * t), rtol=1e-12)
    assert_close(s.sigma(t) ** 2, g * (1 - g), rtol=1e-12)
    assert_close(s.t_from_lambda(s.lambda_(t)), t, rtol=1e-9)
    assert_close(s.accuracy(t), 1 / (1 - g), rtol=1e-9)


def test_continuous_sde_coefficients_match_the_marginals():
    """Theorem 4.1: with α = γ and σ² = γ(1 − γ), f = d log α/dτ and g² = dσ²/dτ − 2 f σ² (τ = 1 − t)."""
    s = ContinuousSchedule(0.01)
    for t in (0.1, 0.5, 0.9):
        h = 1e-6
        dlog_alpha = -(math.log(float(s.alpha(t + h))) - math.log(float(s.alpha(t - h)))) / (2 * h)
        dvar = -(float(s.sigma(t + h)) ** 2 - float(s.sigma(t - h)) ** 2) / (2 * h)
        f, g2 = float(s.f(t)), float(s.g2(t))
        assert f == pytest.approx(dlog_alpha, rel=1e-6)
        assert g2 == pytest.approx(dvar - 2 * f * float(s.sigma(t)) ** 2, rel=1e-5)


def test_discrete_sde_coefficients():
    """Theorem 5.1: mean β(Ke − 1), variance Kβ: f = d log β/dτ, g² = K dβ/dτ − 2 f K β, and f + g²/(Kβ) = 0."""
    s = DiscreteSchedule(5, beta_1=2.0)
    for t in (0.1, 0.5, 0.9):
        h = 1e-6
        f = -(math.log(float(s.beta(t + h))) - math.log(float(s.beta(t - h)))) / (2 * h)
        g2 = -5 * (float(s.beta(t + h)) - float(s.beta(t - h))) / (2 * h) - 2 * f * 5 * float(s.beta(t))
        assert float(s.f(t)) == pytest.approx(f, rel=1e-6)
        assert float(s.g2(t)) == pytest.approx(g2, rel=1e-5)
        assert float(s.f(t)) + float(s.g2(t)) / (5 * float(s.beta(t))) == pytest.approx(0.0, abs=1e-9)


def test_bfn_step_accuracies_sum_to_the_final_accuracy():
    c, d = ContinuousSchedule(0.001), DiscreteSchedule(27, 0.5625)
    n = 37
    assert sum(c.bfn_alpha(i, n) for i in range(1, n + 1)) == pytest.approx(
        float(c.accuracy(1.0)) - 1.0, rel=1e-9
    )
    assert sum(d.bfn_alpha(i, n) for i in range(1, n + 1)) == pytest.approx(0.5625, rel=1e-12)


def test_forward_samplers_have_the_stated_moments():
    g = torch.Generator().manual_seed(0)
    c = ContinuousSchedule(0.001)
    x = torch.full((20000, 1), 0.5, dtype=torch.float64)
    t = torch.full((20000,), 0.3, dtype=torch.float64)
    mu, _ = c.sample_mu(x, t, g)
    gam = float(c.gamma(0.3))
    assert float(mu.mean()) == pytest.approx(gam * 0.5, abs=4 * math.sqrt(gam * (1 - gam) / 20000))
    assert float(mu.var()) == pytest.approx(gam * (1 - gam), rel=0.05)
    d = DiscreteSchedule(4, 3.0)
    ids = torch.zeros(20000, 1, dtype=torch.long)
    z = d.sample_z(ids, t, g, dtype=torch.float64)
    beta = float(d.beta(0.3))
    assert_close(
        z.mean((0, 1)), beta * (4 * torch.tensor([1.0, 0, 0, 0]) - 1), atol=5 * math.sqrt(4 * beta / 20000)
    )
    assert float(z.var(0).mean()) == pytest.approx(4 * beta, rel=0.05)


@pytest.mark.parametrize("spacing", ["time", "logsnr"])
def test_time_grid_is_increasing_from_eta_to_one(spacing):
    s = ContinuousSchedule()
    grid = time_grid(s, 10, 0.01, spacing)
    assert grid[0] == 0.01
    assert grid[-1] == 1.0
    assert (grid.diff() > 0).all()
    if spacing == "logsnr":
        assert_close(s.lambda_(grid).diff(), s.lambda_(grid).diff().mean().expand(10), rtol=1e-6)
    with pytest.raises(ValueError, match="steps"):
        time_grid(s, 0, 0.01)
