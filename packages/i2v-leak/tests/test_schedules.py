"""Early-start grids: the official "uniform trailing" rule, diffusers' trailing spacing, Karras sigmas."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from i2v_leak.schedules import edm_sigmas, karras_sigmas, start_timesteps

from gen_common.testing import assert_close


def official_uniform_trailing(M: int, steps: int) -> list[int]:
    """The official make_ddim_timesteps('uniform_trailing') expression, newest first."""
    c = M / steps
    ts = np.flip(np.round(np.arange(M, 0, -c))).astype(np.int64) - 1
    return ts[::-1].tolist()


def test_start_940_50_begins_at_939_with_50_steps():
    ts = start_timesteps(940, 50)
    assert len(ts) == 50
    assert ts[0] == 939
    assert ts[-1] == 18  # round(940/50) − 1
    assert all(a > b for a, b in itertools.pairwise(ts))
    # the strides alternate between 19 and 18: no fixed stride exists, which stock DDIM assumes
    assert set(np.diff(ts[::-1]).tolist()) == {18, 19}


@pytest.mark.parametrize(("M", "steps"), [(940, 50), (1000, 50), (1000, 30), (999, 7), (50, 50), (900, 25)])
def test_matches_official_expression(M, steps):
    assert start_timesteps(M, steps) == official_uniform_trailing(M, steps)


def test_official_float_arange_glitch_is_avoided():
    """arange(820, 0, −32.8) ends with a float ~1e−13 > 0, so the official rule yields a 26th "timestep" −1
    (which would index ᾱ_T); the grid here keeps the first 25 points."""
    official = official_uniform_trailing(820, 25)
    assert len(official) == 26
    assert official[-1] == -1
    ours = start_timesteps(820, 25)
    assert len(ours) == 25
    assert ours == official[:-1]


@pytest.mark.parametrize("steps", [10, 20, 25, 30, 50])
def test_every_start_matches_the_official_grid_ties_included(steps):
    """Every M in 1..1000: the official float arange decides round-half-to-even ties."""
    for M in range(1, 1001):
        if steps > M:
            with pytest.raises(ValueError):
                start_timesteps(M, steps)
            continue
        official = official_uniform_trailing(M, steps)
        official = official[:-1] if len(official) == steps + 1 and official[-1] == -1 else official
        if len(set(official)) != len(official):
            with pytest.raises(ValueError, match="repeats"):
                start_timesteps(M, steps)
            continue
        assert start_timesteps(M, steps) == official, (M, steps)


def test_the_sweep_covers_rounding_ties():
    """An integer-index grid M − i·M/steps differs from the official one by a timestep at a tie for 1184 of the
    (M, steps) pairs above, so the sweep does test the cases where the two constructions disagree."""
    ties = 0
    for steps in (10, 20, 25, 30, 50):
        for M in range(steps, 1001):
            integer_grid = (np.round(M - (M / steps) * np.arange(steps)).astype(np.int64) - 1).tolist()
            ties += integer_grid != official_uniform_trailing(M, steps)[:steps]
    assert ties == 1184


@pytest.mark.parametrize("steps", [10, 25, 30, 50])
def test_M_equal_T_is_diffusers_trailing(steps):
    diffusers = pytest.importorskip("diffusers")
    s = diffusers.DDIMScheduler(timestep_spacing="trailing")
    s.set_timesteps(steps)
    assert s.timesteps.tolist() == start_timesteps(1000, steps)


def test_bad_grids_are_refused():
    with pytest.raises(ValueError, match="steps"):
        start_timesteps(10, 11)
    with pytest.raises(ValueError):
        start_timesteps(0, 1)
    with pytest.raises(ValueError):
        start_timesteps(100, 0)


def test_karras_endpoints_and_rho_spacing():
    s = karras_sigmas(0.002, 100.0, 25)
    assert_close(s[0], torch.tensor(100.0, dtype=torch.float64), rtol=1e-12)
    assert_close(s[-1], torch.tensor(0.002, dtype=torch.float64), rtol=1e-12)
    # σ^{1/ρ} is linear in the step index
    r = s ** (1 / 7)
    assert_close(r[1:] - r[:-1], (r[1] - r[0]).expand(24), rtol=1e-9)


def test_edm_sigmas_match_diffusers_euler_with_sigma_max_100():
    """The official CIL SVD swaps in an EulerDiscreteScheduler config with sigma_max=100; passing
    edm_sigmas(100, n) as the pipeline's sigmas= gives the same grid."""
    pytest.importorskip("diffusers")
    from diffusers import EulerDiscreteScheduler

    from gen_common.testing.video_tiny import tiny_svd_scheduler

    s = EulerDiscreteScheduler.from_config(tiny_svd_scheduler().config, sigma_max=100.0)
    s.set_timesteps(25)
    ours = torch.tensor(edm_sigmas(100.0, 25), dtype=torch.float64)
    assert ours[-1] == 0
    assert_close(s.sigmas.double(), ours, rtol=1e-6, atol=1e-7)
    t = EulerDiscreteScheduler.from_config(tiny_svd_scheduler().config)
    t.set_timesteps(sigmas=edm_sigmas(100.0, 25))
    assert_close(t.timesteps.double(), s.timesteps.double(), rtol=1e-6, atol=1e-6)


def test_edm_start_must_exceed_sigma_min():
    with pytest.raises(ValueError, match="sigma_min"):
        edm_sigmas(0.001, 10)
