"""DDIM on an explicit timestep list: parity with diffusers' DDIM on its own grid, exactness on a closed form."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")

from diffusers import DDIMScheduler
from i2v_leak.ddim import TimestepListDDIMScheduler, ddim_scheduler_for_start
from i2v_leak.schedules import start_timesteps

from gen_common.testing import assert_close

CFG = dict(
    beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, steps_offset=1
)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_parity_with_ddim_on_its_own_grid(prediction_type, eta):
    stock = DDIMScheduler(**CFG, prediction_type=prediction_type, set_alpha_to_one=False)
    ours = TimestepListDDIMScheduler.from_config(stock.config)
    stock.set_timesteps(10)
    ours.set_timesteps(10)
    assert torch.equal(stock.timesteps, ours.timesteps)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 8, 8, generator=g)
    y = x.clone()
    for t in stock.timesteps:
        out = torch.randn(x.shape, generator=g)
        noise = torch.randn(x.shape, generator=g)
        x = stock.step(out, t, x, eta=eta, variance_noise=noise if eta else None).prev_sample
        y = ours.step(out, t, y, eta=eta, variance_noise=noise if eta else None).prev_sample
        assert_close(y, x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("M", "steps"), [(940, 50), (820, 7), (1000, 3)])
def test_exact_denoiser_lands_on_the_data_point(M, steps):
    """Data = a point mass at c: ε*(x_t, t) = (x_t − √ᾱ_t c)/√(1 − ᾱ_t) is exact, and deterministic DDIM on any
    grid must reach c exactly when the final step goes to ᾱ = 1 (up to the scheduler's float32 ᾱ)."""
    s = TimestepListDDIMScheduler(**CFG, set_alpha_to_one=True)
    s.set_timesteps(timesteps=start_timesteps(M, steps))
    ac = s.alphas_cumprod.double()
    c = torch.linspace(-1, 1, 16, dtype=torch.float64)
    x = torch.randn(16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    visited = []
    for t in s.timesteps:
        a = ac[int(t)]
        eps = (x - a.sqrt() * c) / (1 - a).sqrt()
        visited.append(int(t))
        x = s.step(eps, t, x).prev_sample
    assert visited == start_timesteps(M, steps)
    assert_close(x, c, rtol=0, atol=2e-6)


def test_stock_ddim_steps_to_the_wrong_previous_timestep_on_an_uneven_grid():
    """Why the subclass exists: stock DDIM's prev = t − T//n misses the next listed timestep."""
    ts = start_timesteps(940, 50)
    stock_prev = [t - 1000 // 50 for t in ts[:-1]]
    assert stock_prev != ts[1:]
    s = TimestepListDDIMScheduler(**CFG)
    s.set_timesteps(timesteps=ts)
    assert [s.previous_timestep(t) for t in ts] == [*ts[1:], -1]


def test_start_at_drives_pipeline_style_set_timesteps():
    s = ddim_scheduler_for_start(DDIMScheduler(**CFG), 940)
    s.set_timesteps(50, device="cpu")
    assert s.timesteps.tolist() == start_timesteps(940, 50)
    s2 = ddim_scheduler_for_start(DDIMScheduler(**CFG), None)
    s2.set_timesteps(20)
    ref = DDIMScheduler(**CFG)
    ref.set_timesteps(20)
    assert torch.equal(s2.timesteps, ref.timesteps)


def test_bad_lists_are_refused():
    s = TimestepListDDIMScheduler(**CFG)
    with pytest.raises(ValueError, match="decreasing"):
        s.set_timesteps(timesteps=[10, 20])
    with pytest.raises(ValueError, match=r"\[0, 1000\)"):
        s.set_timesteps(timesteps=[1000, 10])
    with pytest.raises(ValueError, match="M must be"):
        ddim_scheduler_for_start(DDIMScheduler(**CFG), 1001)
    s.set_timesteps(timesteps=[500, 100])
    with pytest.raises(ValueError, match="not on the current grid"):
        s.step(torch.zeros(1), 300, torch.zeros(1))
