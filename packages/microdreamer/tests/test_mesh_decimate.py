"""Decimation: the face budget is met, a sphere stays closed and round, colours ride along, bad targets fail."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from microdreamer.cli import main
from microdreamer.decimate import decimate_mesh
from microdreamer.gaussians import GaussianModel
from microdreamer.mesh import Mesh, extract_mesh


def _sphere_mesh(resolution=48) -> Mesh:
    g = GaussianModel.from_activated(
        torch.zeros(1, 3), torch.full((1, 3), 0.2), torch.tensor([[0.9, 0.2, 0.1]]), torch.tensor([0.9])
    )
    return extract_mesh(g, threshold=0.2, resolution=resolution)


def _outward(mesh: Mesh) -> np.ndarray:
    v, f = mesh.vertices, mesh.faces
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    return (n * v[f].mean(1)).sum(1) > 0


def test_decimated_sphere_is_watertight_round_and_outward():
    mesh = _sphere_mesh()
    assert len(mesh.faces) > 5000 and _outward(mesh).all()  # marching cubes faces wound outwards
    dec = decimate_mesh(mesh, 800)
    assert len(dec.faces) <= 800 and dec.edges_manifold()
    r0 = np.linalg.norm(mesh.vertices, axis=1).mean()
    r1 = np.linalg.norm(dec.vertices, axis=1).mean()
    assert abs(r1 / r0 - 1) < 0.01
    assert _outward(dec).all()
    assert decimate_mesh(mesh, len(mesh.faces)) is mesh  # already small enough: untouched


def test_two_colour_mesh_keeps_its_colours():
    mesh = _sphere_mesh()
    red, blue = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    mesh.colors = np.where(mesh.vertices[:, :1] > 0, red, blue).astype(np.float32)
    dec = decimate_mesh(mesh, 600)
    is_red = (dec.colors == red).all(1)
    assert (is_red | (dec.colors == blue).all(1)).all()  # never blended across the colour edge
    # every vertex more than a decimated edge length from the colour edge keeps its side's colour
    far = np.abs(dec.vertices[:, 0]) > 0.06
    assert (is_red[far] == (dec.vertices[far, 0] > 0)).all() and far.sum() > 0.7 * len(dec.vertices)


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_bad_target_is_refused(bad):
    with pytest.raises(ValueError, match="target_faces must be a positive integer"):
        decimate_mesh(_sphere_mesh(16), bad)


def test_cli_target_faces(tmp_path, capsys):
    g = GaussianModel.from_activated(
        torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0]]),
        torch.full((2, 3), 0.15),
        torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.2, 0.9]]),
        torch.tensor([0.9, 0.9]),
    )
    ply = g.save_ply(tmp_path / "g.ply")
    args = ["export-mesh", str(ply), "--resolution", "32", "--json"]
    assert main([*args, "--target-faces", "500", "--out", str(tmp_path / "a")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["faces_marching_cubes"] > 500 >= rep["faces"] and rep["watertight"]
    for bad in ("0", "-3"):
        assert main([*args, "--target-faces", bad, "--out", str(tmp_path / "b")]) == 2
        err = capsys.readouterr().err.strip()
        assert "target-faces" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_the_fast_vertex_mapping_is_the_librarys():
    """`decimate_mesh` maps each original vertex to its output vertex by its surviving root's rank (the library keeps
    survivors in their original order); that must be the mapping the library itself reports
    (`replay_simplification`, the fallback), or colours would land on the wrong vertices."""
    import fast_simplification
    from microdreamer.decimate import _cluster_of

    mesh = _sphere_mesh(32)
    v, f = mesh.vertices.astype(np.float64), mesh.faces.astype(np.int32)
    pts, _, collapses = fast_simplification.simplify(v, f, target_count=300, agg=7.0, return_collapses=True)
    roots = _cluster_of(len(v), np.asarray(collapses, dtype=np.int64))
    survivors = np.unique(roots)
    assert len(survivors) == len(pts)  # the fast path's condition holds on a closed mesh
    _, _, library = fast_simplification.replay_simplification(v.astype(np.float32), f, collapses)
    np.testing.assert_array_equal(np.searchsorted(survivors, roots), library)
