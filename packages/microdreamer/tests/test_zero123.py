"""The Stable-Zero123 adapter on a tiny random model: protocol, CFG batches, counter, save/load, one SIR iteration."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")

from microdreamer.cameras import orbit_cameras
from microdreamer.gaussians import GaussianModel
from microdreamer.loop import Reference
from microdreamer.presets import get_preset
from microdreamer.sir import run_sir


@pytest.fixture(scope="module")
def zero123():
    from microdreamer.zero123 import tiny_zero123

    d = tiny_zero123(seed=0)
    img = torch.ones(1, 3, 32, 32)
    img[..., 8:24, 8:24] = torch.tensor([0.8, 0.2, 0.1]).view(1, 3, 1, 1)
    d.set_reference(img, elevation=0.0)
    return d, img


def test_cfg_combines_cond_and_uncond_and_counts(zero123):
    d, _ = zero123
    d.counter.reset()
    cams = orbit_cameras([10.0, -20.0], [30.0, 210.0], size=32)
    x = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    e1 = d.eps(x, 501, cams, guidance_scale=1.0)
    e3 = d.eps(x, 501, cams, guidance_scale=3.0)
    eu = d.eps(x, 501, cams, guidance_scale=3.0, uncond_only=True, doubled=False, phase="inversion")
    eu2 = d.eps(x, 501, cams, guidance_scale=3.0, uncond_only=True, doubled=True, phase="inversion")
    assert torch.allclose(
        eu, eu2, atol=1e-5
    )  # the release's doubled batch returns the same unconditional half
    assert torch.allclose(e3, eu + 3 * (e1 - eu), atol=1e-4)  # ε_u + w(ε_c − ε_u)
    assert not torch.allclose(e1, eu, atol=1e-4)  # the camera/image condition matters
    assert d.counter.nfe == 2 + 2 + 1 + 2 and d.counter.calls == 4


def test_camera_embedding_is_stable_zero123s(zero123):
    d, _ = zero123
    cams = orbit_cameras([30.0], [90.0], size=32)
    T = d._camera(cams)[0, 0]
    expected = torch.tensor([torch.pi / 6, 1.0, 0.0, torch.pi / 2])
    assert torch.allclose(T.float(), expected, atol=1e-6)


def test_save_and_load_round_trip(zero123, tmp_path):
    from microdreamer.zero123 import Zero123Denoiser

    d, img = zero123
    d.save_pretrained(tmp_path / "z")
    d2 = Zero123Denoiser.from_pretrained(tmp_path / "z")
    torch.manual_seed(0)
    d2.set_reference(img)
    cams = orbit_cameras([0.0], [45.0], size=32)
    x = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    d.embeddings = d2.embeddings  # the VAE latent of the reference is sampled; share it
    assert torch.allclose(
        d.eps(x, 301, cams, guidance_scale=3.0), d2.eps(x, 301, cams, guidance_scale=3.0), atol=1e-5
    )
    with pytest.raises(FileNotFoundError, match="not a Zero123 diffusers folder"):
        Zero123Denoiser.from_pretrained(tmp_path)


def test_one_sir_iteration_with_reference_terms(zero123):
    d, img = zero123
    d.counter.reset()
    mask = (img < 0.99).any(1, keepdim=True).float()
    p = get_preset(
        "sai",
        render_size=32,
        ref_size=32,
        total_steps=2,
        inner_steps=2,
        init_steps=1,
        num_pts=400,
        views=2,
        denoise_steps=4,
    )
    m = GaussianModel.blob(p.num_pts, generator=torch.Generator().manual_seed(0))
    r = run_sir(m, d, p, reference=Reference(img, mask), generator=torch.Generator().manual_seed(0))
    assert r.t2 == [
        751,
        751,
    ]  # N = 4: start index 4·0.1 = 0.4 → 0 (1001 − 250·…): timesteps [751, 501, 251, 1]
    assert d.counter.by_phase["sample"] == 2 * 4 + 2 * 4  # init: the whole chain; then DDIM from 751
    assert r.steps == 1 + 2 and len(r.history.nfe) == 3
    assert len(m) > 0 and (m.opacities - 0.1).abs().min() > 1e-4  # every kept Gaussian was optimised


def test_preset_for_other_family_is_refused(zero123):
    d, _ = zero123
    m = GaussianModel.blob(20, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="is for a analytic denoiser"):
        run_sir(m, d, get_preset("toy"))


def test_vae_noise_is_seeded_and_a_resumed_run_is_bit_identical(zero123, tmp_path):
    """The VAE posterior sample draws from the denoiser's own generator (not torch's global one), so a run repeats
    under a seed, and a checkpoint saves that generator: stopped and resumed equals uninterrupted, bit for bit."""
    from microdreamer.checkpoints import Checkpointer

    d, img = zero123
    mask = (img < 0.99).any(1, keepdim=True).float()
    p = get_preset("sai", render_size=32, ref_size=32, total_steps=3, inner_steps=1, init_steps=1,
                   num_pts=100, views=2, denoise_steps=4)  # fmt: skip

    class Stop(Exception):
        pass

    def sir(folder=None, resume=False, stop_after=None, vae_seed=0, global_seed=0):
        d.generator.manual_seed(vae_seed)
        torch.manual_seed(global_seed)  # the global generator must not matter
        m = GaussianModel.blob(p.num_pts, generator=torch.Generator().manual_seed(0))

        def progress(i, n):
            if i == stop_after:
                raise Stop

        ck = None if folder is None else Checkpointer(folder, every=1, resume=resume)
        run_sir(m, d, p, reference=Reference(img, mask), generator=torch.Generator().manual_seed(0),
                progress=progress, checkpoint=ck)  # fmt: skip
        return m

    a, b, c = sir(), sir(global_seed=9), sir(vae_seed=1)
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    assert not torch.equal(a.xyz, c.xyz)  # the VAE noise is drawn, and follows its seed
    with pytest.raises(Stop):
        sir(tmp_path, stop_after=2)
    resumed = sir(
        tmp_path, resume=True, vae_seed=5, global_seed=5
    )  # another seed: the checkpoint's generator state wins
    assert all(torch.equal(a.params[k], resumed.params[k]) for k in a.params)
