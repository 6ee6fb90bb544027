"""The paper's per-model settings, including VideoCrafter1's μ_max bug."""

from __future__ import annotations

import pytest
from i2v_leak.presets import OFFICIAL_MU_MAX, PRESETS, get_preset
from i2v_leak.schedules import start_timesteps


def test_paper_values():
    dc, vc, svd = get_preset("dynamicrafter"), get_preset("videocrafter1"), get_preset("svd")
    assert (dc.M, dc.steps, dc.eta, dc.guidance, dc.beta_m, dc.a, dc.mu_max, dc.lr) == (
        940,
        50,
        1.0,
        7.5,
        100,
        5,
        1,
        1e-5,
    )
    assert get_preset("dynamicrafter-cil").M == 1000
    assert (vc.M, vc.guidance, vc.beta_m, vc.a) == (940, 12.0, 100, 5)
    assert (svd.M, svd.baseline_M, svd.steps, svd.beta_m, svd.lr) == (100.0, 700.0, 25, 15, 3e-5)
    assert (svd.num_frames, svd.height, svd.width, svd.fps, svd.motion_bucket_id) == (16, 320, 512, 3, 20)


def test_videocrafter_uses_the_intended_mu_max_and_records_the_bug():
    vc = get_preset("videocrafter1")
    assert vc.mu_max == 1.0
    assert OFFICIAL_MU_MAX["videocrafter1"] == 4.0
    assert "bug" in vc.notes
    assert vc.timenoise().mu_max == 1.0


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_consistent(name):
    p = PRESETS[name]
    assert p.baseline_M >= p.M
    tn = p.timenoise()
    assert tn.beta_m == p.beta_m
    if p.family == "ddpm":
        assert start_timesteps(int(p.M), p.steps)[0] == int(p.M) - 1


def test_released_inference_and_training_values():
    cil = get_preset("svd-cil")
    # fps id 5 reaches the UNet (diffusers feeds fps − 1) and the released noise augmentation, not diffusers' 0.02
    assert (cil.fps - 1, cil.noise_aug_strength, cil.M, cil.steps) == (5, 0.002, 100.0, 25)
    assert get_preset("svd").noise_aug_strength is None
    off = get_preset("videocrafter1-official")
    assert off.mu_max == OFFICIAL_MU_MAX["videocrafter1"] == 4.0 and off.guidance == 12.0
    assert off.timenoise().mu_max == 4.0


def test_aliases_and_unknown():
    assert get_preset("VideoCrafter").name == "videocrafter1"
    assert get_preset("i2vgen_xl").name == "i2vgenxl"
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("sora")
