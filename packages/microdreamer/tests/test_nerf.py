"""The pure-torch voxel NeRF backend: volume rendering closed form and SIR on it."""

from __future__ import annotations

import math

import torch
from microdreamer.cameras import orbit_cameras
from microdreamer.nerf import VoxelNeRF
from microdreamer.presets import get_preset
from microdreamer.sir import run_sir
from microdreamer.toy import HeldOut, toy_denoiser


def test_empty_field_renders_background_and_uniform_field_matches_beer_lambert():
    nerf = VoxelNeRF(resolution=8, samples=64)
    with torch.no_grad():
        nerf.params["density"].fill_(-30.0)  # softplus ≈ 0: empty
    cams = orbit_cameras([0.0], [0.0], 2.0, size=5)
    out = nerf.render(cams, background=(0.2, 0.4, 0.6))
    assert torch.allclose(out.image[0, :, 2, 2], torch.tensor([0.2, 0.4, 0.6]), atol=1e-4)
    with torch.no_grad():
        nerf.params["density"].fill_(math.log(math.e - 1))  # softplus = 1 → σ = 20 inside the box
        nerf.params["color"].fill_(0.0)  # sigmoid → 0.5
    out = nerf.render(cams, background=(1.0, 1.0, 1.0))
    # the central ray crosses the cube [-0.8, 0.8] over length 1.6: transmittance e^{-20·1.6}
    acc = out.alpha[0, 0, 2, 2].item()
    assert abs(acc - (1 - math.exp(-20 * 1.6))) < 0.02
    assert abs(out.image[0, 0, 2, 2].item() - 0.5) < 0.02


def test_sir_on_the_nerf_backend_reduces_heldout_error():
    den = toy_denoiser()
    p = get_preset("toy", render_size=12, total_steps=3, inner_steps=10, init_steps=10)
    held = HeldOut(den, size=12)
    nerf = VoxelNeRF(resolution=16, samples=24, generator=torch.Generator().manual_seed(0))
    r = run_sir(nerf, den, p, generator=torch.Generator().manual_seed(0), evaluate=held)
    assert r.history.error[-1] < 0.7 * r.history.error[0]
