import pytest
import torch
from posecrafter.ddim import DDIMSchedule, ddim_invert, ddim_sample, ddim_step

from gen_common.testing.diffusers_tiny import sd_ddim_scheduler


def _sched(steps):
    s = sd_ddim_scheduler()
    return s, DDIMSchedule.from_scheduler(s, steps)


def _gaussian_eps(mu, s2, sched):
    """Exact ε of data N(mu, s2·I) under the VP forward process: E[ε | x_t] = √(1−ᾱ)(x − √ᾱ μ)/(ᾱ s² + 1 − ᾱ)."""

    def eps(x, t):
        a = float(sched.alphas_cumprod[t])
        return (1 - a) ** 0.5 * (x - a**0.5 * mu) / (a * s2 + 1 - a)

    return eps


def test_step_matches_diffusers_scheduler():
    s, sched = _sched(10)
    s.set_timesteps(10)
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0)).double()
    eps = torch.randn(2, 3, generator=torch.Generator().manual_seed(1)).double()
    for i, t in enumerate(s.timesteps):
        ref = s.step(eps, t, x, eta=0.0).prev_sample
        torch.testing.assert_close(
            ddim_step(eps, x, sched.alpha(i), sched.alpha(i + 1)), ref, rtol=1e-6, atol=1e-8
        )


def test_round_trip_is_exact_when_eps_does_not_depend_on_x():
    """With ε(x, t) = c(t), inversion and sampling evaluate the same ε at each step: exact inverses."""
    _, sched = _sched(50)
    v = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)

    def eps(x, t):
        return torch.sin(torch.tensor(t / 100.0, dtype=torch.float64)) * v

    x0 = torch.tensor([1.0, 0.5, -0.25], dtype=torch.float64)
    traj = ddim_invert(eps, x0, sched)
    assert len(traj) == 51
    assert (traj[-1] - x0).abs().max() > 0.5  # it did travel towards noise
    torch.testing.assert_close(ddim_sample(eps, traj[-1], sched), x0, rtol=0, atol=1e-10)


@pytest.mark.parametrize("steps", [20, 100])
def test_round_trip_on_an_analytic_gaussian(steps):
    _, sched = _sched(steps)
    mu, s2 = torch.tensor([1.0, -0.5], dtype=torch.float64), 0.25
    eps = _gaussian_eps(mu, s2, sched)
    x0 = torch.tensor([1.4, -0.9], dtype=torch.float64)
    back = ddim_sample(eps, ddim_invert(eps, x0, sched)[-1], sched)
    err = (back - x0).abs().max().item()
    assert err < (0.05 if steps == 20 else 0.01)


def test_round_trip_error_shrinks_with_steps():
    errs = []
    for steps in (10, 40, 160):
        _, sched = _sched(steps)
        eps = _gaussian_eps(torch.zeros(1, dtype=torch.float64), 0.1, sched)
        x0 = torch.tensor([0.9], dtype=torch.float64)
        errs.append((ddim_sample(eps, ddim_invert(eps, x0, sched)[-1], sched) - x0).abs().item())
    assert errs[0] > errs[1] > errs[2]
