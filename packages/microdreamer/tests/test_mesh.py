"""Mesh export: a Gaussian sphere meshes watertight at the analytic iso-radius; bad thresholds fail in one line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from microdreamer.gaussians import GaussianModel
from microdreamer.mesh import extract_mesh, save_mesh


def _sphere(sigma=0.2, opacity=0.9):
    return GaussianModel.from_activated(
        torch.zeros(1, 3), torch.full((1, 3), sigma), torch.tensor([[0.9, 0.2, 0.1]]), torch.tensor([opacity])
    )


def test_sphere_is_watertight_at_the_analytic_radius():
    sigma, o, tau = 0.2, 0.9, 0.2
    mesh = extract_mesh(_sphere(sigma, o), threshold=tau, resolution=48)
    r = np.linalg.norm(mesh.vertices, axis=1)
    analytic = sigma * math.sqrt(2 * math.log(o / tau))  # o·exp(−r²/2σ²) = τ
    assert abs(r.mean() / analytic - 1) < 0.05
    assert mesh.edges_manifold()
    assert np.allclose(mesh.colors, [0.9, 0.2, 0.1], atol=1e-3)


def test_threshold_above_peak_is_one_line_error():
    with pytest.raises(ValueError, match="no Gaussian density reaches the threshold 5"):
        extract_mesh(_sphere(), threshold=5.0, resolution=16)  # above Σ o_i: refused before gridding
    two = GaussianModel.from_activated(
        torch.tensor([[-0.5, 0, 0], [0.5, 0, 0]]),
        torch.full((2, 3), 0.05),
        torch.rand(2, 3),
        torch.tensor([0.5, 0.5]),
    )
    with pytest.raises(ValueError, match=r"threshold 0.8 \(the peak is 0\.[0-5]"):
        extract_mesh(two, threshold=0.8, resolution=16)  # below Σ o_i but no voxel reaches it


@pytest.mark.parametrize("fmt", ["obj", "ply", "glb"])
def test_writers(tmp_path, fmt):
    if fmt == "glb":
        pytest.importorskip("trimesh")
    mesh = extract_mesh(_sphere(), threshold=0.2, resolution=16)
    path = save_mesh(mesh, tmp_path / f"m.{fmt}")
    if fmt == "obj":
        lines = path.read_text().splitlines()
        assert sum(line.startswith("v ") for line in lines) == len(mesh.vertices)
        assert sum(line.startswith("f ") for line in lines) == len(mesh.faces)
    else:
        import trimesh

        tm = trimesh.load(path, force="mesh")
        assert len(tm.faces) == len(mesh.faces) and tm.is_watertight


def test_density_grid_chunks_split_large_boxes():
    # one Gaussian whose box is the whole grid, in chunks far smaller than that box: the same grid, bounded memory
    from microdreamer.mesh import density_grid

    whole, _, _ = density_grid(_sphere(), 20)
    split, _, _ = density_grid(_sphere(), 20, chunk=999)
    assert torch.equal(whole, split) and float(whole.max()) > 0.85
