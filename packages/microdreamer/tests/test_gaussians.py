"""Gaussian model: DreamGaussian's init, Adam, lr schedule, densify/prune bookkeeping, .ply round trip."""

from __future__ import annotations

import math

import pytest
import torch
from microdreamer.cameras import orbit_cameras
from microdreamer.gaussians import Adam, GaussianModel, expon_lr


def test_blob_init_matches_dreamgaussian():
    m = GaussianModel.blob(500, generator=torch.Generator().manual_seed(0))
    assert len(m) == 500 and m.spatial_lr_scale == 10.0
    assert m.xyz.norm(dim=-1).max() <= 0.5 + 1e-6
    assert torch.allclose(m.opacities, torch.full((500,), 0.1), atol=1e-6)
    assert (m.colors >= 0.5).all() and (m.colors < 0.5 + 0.3 / 255).all()  # near-zero SH → grey 0.5


def test_adam_matches_algorithm_1():
    p = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = Adam([{"params": [p], "lr": 0.1, "name": "x"}], eps=1e-8)
    m = v = torch.zeros(2)
    ref = p.detach().clone()
    for step in (1, 2, 3):
        g = 2 * ref  # d/dp of p²
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        ref = ref - 0.1 * (m / (1 - 0.9**step)) / ((v / (1 - 0.999**step)).sqrt() + 1e-8)
        (p * p).sum().backward()
        opt.step()
        opt.zero_grad()
    assert torch.allclose(p.detach(), ref, atol=1e-6)


def test_position_lr_decays_log_linearly():
    assert expon_lr(0, 1e-2, 2e-4, 500) == pytest.approx(1e-2)
    assert expon_lr(250, 1e-2, 2e-4, 500) == pytest.approx(math.sqrt(1e-2 * 2e-4))
    assert expon_lr(900, 1e-2, 2e-4, 500) == pytest.approx(2e-4)


def test_densify_clones_small_splits_large_and_prunes():
    means = torch.tensor([[0.0, 0, 0], [0.3, 0, 0], [-0.3, 0, 0]])
    scales = torch.tensor([[0.01] * 3, [0.2] * 3, [0.01] * 3])
    m = GaussianModel.from_activated(means, scales, torch.rand(3, 3), torch.tensor([0.9, 0.9, 0.001]))
    m.training_setup()
    cams = orbit_cameras([0.0], [0.0], size=8)
    out = m.render(cams, track_means2d=True)
    out.image.sum().backward()
    m.optimizer.step()  # Adam state exists and must follow the tensors
    m.xyz_gradient_accum[:] = torch.tensor([1.0, 1.0, 0.0])
    m.denom[:] = 1
    stats = m.densify_and_prune(0.01, min_opacity=0.005, extent=4.0, max_screen_size=1)
    # small #0 cloned (2 copies), large #1 split into 2 (original removed), #2 pruned (opacity 0.001)
    assert stats == {"cloned": 1, "split": 1, "pruned": 1}
    assert len(m) == 4
    # split children scaled by 1/(0.8·2) (one Adam step of lr 0.005 on the log-scale moved it by < 1%)
    assert torch.allclose(m.scales[-2:], torch.full((2, 3), 0.2 / 1.6), rtol=0.01)
    for g in m.optimizer.param_groups:
        st = m.optimizer.state[g["params"][0]]
        assert st["exp_avg"].shape == g["params"][0].shape
    assert int(m.max_radii2D.abs().sum()) == 0  # DreamGaussian's post-densify reset


def test_ply_round_trip(tmp_path):
    m = GaussianModel.blob(50, generator=torch.Generator().manual_seed(0))
    p = m.save_ply(tmp_path / "g.ply")
    m2 = GaussianModel.load_ply(p)
    for k in m.params:
        assert torch.allclose(m.params[k], m2.params[k])
    (tmp_path / "bad.ply").write_bytes(b"not a ply")
    with pytest.raises(ValueError, match=r"not a \.ply"):
        GaussianModel.load_ply(tmp_path / "bad.ply")


def test_release_white_filter_deletes_only_contributing_large_white_gaussians():
    from microdreamer.postprocess import filter_white_gaussians

    means = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.0, 0.3, 0.0]])
    scales = torch.tensor([[0.05] * 3, [0.005] * 3, [0.05] * 3])
    colors = torch.tensor(
        [[1.2, 1.2, 1.2], [1.3, 1.3, 1.3], [0.9, 0.2, 0.1]]
    )  # over-white, small over-white, red
    m = GaussianModel.from_activated(means, scales, colors, torch.tensor([0.9, 0.9, 0.9]))
    assert filter_white_gaussians(m, size=64) == 1
    assert len(m) == 2 and torch.allclose(m.xyz, means[1:])


def test_densification_stats_all_views_or_last_view_only():
    m = GaussianModel.from_activated(
        torch.zeros(1, 3), torch.full((1, 3), 0.05), torch.rand(1, 3), torch.tensor([0.9])
    )
    m.training_setup()
    cams = orbit_cameras([0.0, 0.0, 0.0], [0.0, 90.0, 180.0], size=16)
    out = m.render(cams, track_means2d=True)
    (out.image[0].sum() * 3 + out.image[2].sum()).backward()  # views differ in how much they pull
    g = out.means2d.grad.norm(dim=-1)[:, 0]
    m.add_densification_stats(out)  # default presets: every view
    assert m.denom.item() == 3 and m.xyz_gradient_accum.item() == pytest.approx(float(g.sum()), rel=1e-5)
    m._reset_stats()
    m.add_densification_stats(out, views=[2])  # the release: the last rendered view only
    assert m.denom.item() == 1 and m.xyz_gradient_accum.item() == pytest.approx(float(g[2]), rel=1e-5)
