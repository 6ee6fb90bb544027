import pytest

pytest.importorskip("diffusers")

from gen_common.testing.diffusers_tiny import sd_ddim_scheduler


def test_sd_ddim_scheduler_is_sd15s_config():
    s = sd_ddim_scheduler()
    c = s.config
    assert (c.beta_start, c.beta_end, c.beta_schedule) == (0.00085, 0.012, "scaled_linear")
    assert (c.clip_sample, c.set_alpha_to_one, c.steps_offset) == (False, False, 1)
    # scaled-linear: sqrt(beta) is linear between the endpoints' square roots
    assert float(s.betas[0]) == pytest.approx(0.00085, rel=1e-6)
    assert float(s.betas[-1]) == pytest.approx(0.012, rel=1e-6)
    s.set_timesteps(50)
    assert int(s.timesteps[0]) == 981 and int(s.timesteps[-1]) == 1  # 'leading' spacing, offset 1
