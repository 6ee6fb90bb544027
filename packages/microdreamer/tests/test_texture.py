"""UV textures: the baked texture renders like the vertex colours, survives .obj/.glb round trips, and stage 2
refines it; the command writes .obj + .mtl + .png and refuses what it cannot write."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from microdreamer.cameras import orbit_cameras
from microdreamer.cli import main
from microdreamer.decimate import decimate_mesh
from microdreamer.mesh import extract_mesh
from microdreamer.mesh_render import render_mesh
from microdreamer.refine import RefineConfig, mesh_heldout_error, refine_mesh_colors
from microdreamer.texture import bake_texture, save_textured_mesh, to_tensors
from microdreamer.toy import HeldOut, toy_denoiser

pytest.importorskip("xatlas")  # the texture extra


@pytest.fixture(scope="module")
def toy_mesh():
    return decimate_mesh(extract_mesh(toy_denoiser().scene, threshold=0.2, resolution=40), 1500)


def test_baked_texture_renders_like_the_vertex_colours(toy_mesh):
    tm = bake_texture(toy_mesh, 256)
    assert tm.edges_manifold() and len(tm.faces) == len(toy_mesh.faces)
    assert np.array_equal(
        tm.vertices, toy_mesh.vertices[tm.source]
    )  # seams duplicate vertices, never move them
    cams = orbit_cameras([0.0, 35.0], [20.0, 200.0], 2.0, size=96)
    ref = render_mesh(
        *(torch.from_numpy(a) for a in (toy_mesh.vertices, toy_mesh.faces, toy_mesh.colors)), cams
    )
    v, f, uv, tex = to_tensors(tm)
    got = render_mesh(v, f, None, cams, uvs=uv, texture=tex)
    assert torch.equal(ref.alpha, got.alpha)
    assert (ref.image - got.image).abs().mean() < 1e-3  # bilinear texels vs barycentric colours


@pytest.mark.parametrize("fmt", ["obj", "glb"])
def test_round_trip_through_trimesh(tmp_path, toy_mesh, fmt):
    trimesh = pytest.importorskip("trimesh")
    tm = bake_texture(toy_mesh, 256)
    files = save_textured_mesh(tm, tmp_path / f"m.{fmt}")
    assert {p.name for p in files} == ({"m.obj", "m.mtl", "m.png"} if fmt == "obj" else {"m.glb"})
    back = trimesh.load(files[0], force="mesh", process=False)
    assert len(back.faces) == len(tm.faces)
    colors = back.visual.to_color().vertex_colors[:, :3] / 255.0  # the texture sampled at each vertex's uv
    assert np.abs(colors - toy_mesh.colors[tm.source]).mean() < 0.01  # a flipped v axis gives 0.27


def test_back_projected_texture_matches_the_gaussians_better(toy_mesh):
    """The release's bake (26 Gaussian renders splatted into the atlas) reproduces held-out Gaussian views better
    than the vertex colours (nearest-Gaussian colours at the vertices)."""
    den = toy_denoiser()
    held = HeldOut(den, size=48)

    def err(m):
        return mesh_heldout_error(m, held.cameras, held.truth)

    from_vertices = bake_texture(toy_mesh, 64)
    from_renders = bake_texture(toy_mesh, 64, render=lambda c: den.scene.render(c).image, render_size=48)
    assert err(from_renders) < 0.8 * err(from_vertices)
    assert np.array_equal(from_renders.uvs, from_vertices.uvs)  # same atlas, only the texels differ


def test_stage2_refines_the_texture(toy_mesh):
    den = toy_denoiser()
    held = HeldOut(den, size=48)
    tm = bake_texture(toy_mesh, 64)
    tm.texture[:] = 0.5
    res = refine_mesh_colors(
        tm,
        den,
        RefineConfig(render_size=48, steps=30),
        evaluate=lambda m: mesh_heldout_error(m, held.cameras, held.truth),
    )
    assert res.error_after < 0.75 * res.error_before  # mip-mapped lookups reach the texels under each pixel
    assert res.mesh.texture.shape == tm.texture.shape and np.array_equal(res.mesh.uvs, tm.uvs)
    assert (tm.texture == 0.5).all()  # the input is not modified


def test_cli_texture(tmp_path, capsys, monkeypatch):
    ply = toy_denoiser().scene.save_ply(tmp_path / "toy.ply")
    args = [
        "export-mesh",
        str(ply),
        "--resolution",
        "24",
        "--texture-size",
        "64",
        "--bake-size",
        "16",
        "--json",
    ]
    assert main([*args, "--refine-steps", "3", "--refine-size", "16", "--out", str(tmp_path / "a")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["watertight"] and rep["refine_nfe"] == 20
    assert {p.name for p in (tmp_path / "a").iterdir()} == {"mesh.obj", "mesh.mtl", "mesh.png"}
    assert main([*args, "--mesh-format", "ply", "--out", str(tmp_path / "b")]) == 2
    assert "obj or .glb" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "xatlas", None)  # as if the extra were not installed
    assert main([*args, "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert "microdreamer[texture]" in err and len(err.splitlines()) == 1


def test_mip_splat_averages_and_fills_holes():
    from microdreamer.texture import _splat, _splat_mip

    g = torch.Generator().manual_seed(0)
    uv = torch.rand(300, 2, generator=g)
    values = torch.tensor([[0.2, 0.5, 0.9]]).expand(300, 3)
    acc, cnt = _splat(64, uv, values)
    assert torch.isclose(cnt.sum(), torch.tensor(300.0))  # bilinear weights sum to one per sample
    hit = cnt > 0
    assert torch.allclose(acc[hit] / cnt[hit, None], values[:1], atol=1e-6)
    acc2, cnt2 = _splat_mip(64, uv, values, min_resolution=4)
    hit2 = cnt2 > 0
    assert hit2.sum() > 2 * hit.sum() and torch.equal(acc2[hit], acc[hit])  # coarser levels only fill holes
    assert torch.allclose(acc2[hit2] / cnt2[hit2, None], values[:1], atol=1e-5)
