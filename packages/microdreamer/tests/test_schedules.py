"""The released timestep rules, DDIM parity with diffusers, presets."""

from __future__ import annotations

import pytest
import torch
from microdreamer.ddim import DDIMGrid
from microdreamer.presets import PRESETS, get_preset
from microdreamer.schedules import t1_for, t2_schedule

# main.py get_denoise_schedule over the 21 train_step calls of configs/image_sai.yaml
SAI_T2 = [
    901,
    901,
    851,
    801,
    751,
    751,
    701,
    651,
    651,
    601,
    551,
    501,
    501,
    451,
    401,
    401,
    351,
    301,
    301,
    251,
    201,
]

# the release's scheduler_config.json
RELEASE_SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    timestep_spacing="leading",
    num_train_timesteps=1000,
    prediction_type="epsilon",
)


def _released_t2(N, total, t_start, t_end, timesteps):
    K, out, k = total - 1, [], 0
    for i in range(total):  # _denoise_step stays 0 after the init step, then advances
        start, end = N * (1 - t_start), N * (1 - t_end)
        out.append(int(timesteps[int((k / K) * (end - start) + start)]))
        k += 0 if i == 0 else 1
    return out


def test_sai_schedule_is_the_released_grid():
    p = get_preset("sai")
    assert t2_schedule(DDIMGrid(p.denoise_steps), p.total_steps, p.t_start, p.t_end) == SAI_T2
    # the quirks: 20·(1 − 0.9) is just below 2 (index 1, t = 901, not 951); t_end's 151 is never reached
    assert int(20 * (1 - 0.9)) == 1
    assert 151 not in SAI_T2


@pytest.mark.parametrize("name", ["sai", "imagedream", "mvdream", "toy"])
def test_presets_match_diffusers_grid_and_release_formula(name):
    diffusers = pytest.importorskip("diffusers")
    p = get_preset(name)
    sch = diffusers.DDIMScheduler(**RELEASE_SCHEDULER)
    sch.set_timesteps(p.denoise_steps)
    grid = DDIMGrid(p.denoise_steps)
    assert grid.timesteps == sch.timesteps.tolist()
    assert t2_schedule(grid, p.total_steps, p.t_start, p.t_end) == _released_t2(
        p.denoise_steps, p.total_steps, p.t_start, p.t_end, sch.timesteps
    )
    inv = diffusers.DDIMInverseScheduler(
        **{k: v for k, v in RELEASE_SCHEDULER.items() if k != "set_alpha_to_one"}, set_alpha_to_one=False
    )
    inv.set_timesteps(p.denoise_steps)
    assert grid.inverse_timesteps == inv.timesteps.tolist()
    for t2 in set(t2_schedule(grid, p.total_steps, p.t_start, p.t_end)):
        ratio = ((torch.tensor(t2) / 1000) * p.denoise_steps * 0.6).to(
            torch.long
        )  # the release: a float32 tensor
        assert t1_for(t2, grid) == int(inv.timesteps[ratio])


def test_t1_values():
    g = DDIMGrid(20)
    assert t1_for(901, g) == 501  # 901/1000·20·0.6 = 10.81 → index 10
    assert t1_for(201, g) == 101


def test_ddim_steps_match_diffusers():
    diffusers = pytest.importorskip("diffusers")
    g = DDIMGrid(10)
    sch = diffusers.DDIMScheduler(**RELEASE_SCHEDULER)
    sch.set_timesteps(10)
    inv = diffusers.DDIMInverseScheduler(
        **{k: v for k, v in RELEASE_SCHEDULER.items() if k != "set_alpha_to_one"}, set_alpha_to_one=False
    )
    inv.set_timesteps(10)
    gen = torch.Generator().manual_seed(0)
    x, e, z = (torch.randn(2, 4, 4, 4, generator=gen, dtype=torch.float64) for _ in range(3))
    for t in (901, 501, 1):
        ref = sch.step(e, t, x, eta=0.5, variance_noise=z).prev_sample
        assert torch.allclose(g.step(e, t, x, eta=0.5, noise=z), ref, atol=1e-6)
        assert torch.allclose(g.add_noise(x, z, t), sch.add_noise(x, z, torch.tensor([t])), atol=1e-6)
    for t_next in (101, 501, 901):
        assert torch.allclose(g.inverse_step(e, t_next, x), inv.step(e, t_next, x).prev_sample, atol=1e-6)


def test_presets_table():
    sai, idr, mv = PRESETS["sai"], PRESETS["imagedream"], PRESETS["mvdream"]
    assert (
        sai.cfg,
        sai.eta,
        sai.views,
        sai.inner_steps,
        sai.init_steps,
        sai.ref_loss,
        sai.ref_mask_loss,
    ) == (3.0, 0.5, 6, 15, 15, 0.3, 0.01)
    assert (idr.cfg, idr.eta, idr.denoise_steps, idr.init_steps) == (2.0, 1.0, 10, 50)
    assert PRESETS["imagedream-eta0"].eta == 0.0
    assert (mv.cfg, mv.eta, mv.denoise_steps) == (7.5, 0.0, 50)
    assert all(p.inverse_ratio == 0.6 for p in PRESETS.values())
    assert PRESETS["official"].official and not sai.official
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("nope")
