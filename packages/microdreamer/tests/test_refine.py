"""Stage-2 colour refinement: the released target rule, and on the exact toy denoiser it lowers held-out error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from microdreamer.cli import main
from microdreamer.ddim import DDIMGrid
from microdreamer.mesh import Mesh, extract_mesh
from microdreamer.refine import RefineConfig, mesh_heldout_error, refine_mesh_colors, refine_views
from microdreamer.toy import HeldOut, toy_denoiser


def test_released_schedule_and_views():
    cfg = RefineConfig()
    assert cfg.timestep(DDIMGrid(50)) == 181  # zero123 refine: timesteps[int(50 · 0.8)]
    assert RefineConfig(denoise_steps=10).timestep(DDIMGrid(10)) == 101  # ImageDream's 10-step refine
    cams = refine_views(cfg, torch.Generator().manual_seed(3))
    az = cams.azimuths.numpy()
    assert len(cams) == 8 and np.allclose(np.diff(az), 45) and -180 <= az[0] < -135
    assert (cams.elevations == 0).all() and cams.width == 512
    with pytest.raises(ValueError, match="strength"):
        RefineConfig(strength=1.0)


def test_refinement_lowers_heldout_error_on_the_exact_toy():
    den = toy_denoiser()
    held = HeldOut(den, size=32)
    mesh = extract_mesh(den.scene, threshold=0.2, resolution=32)
    grey = Mesh(mesh.vertices, mesh.faces, np.full_like(mesh.colors, 0.5))
    res = refine_mesh_colors(
        grey,
        den,
        RefineConfig(render_size=32, steps=30),
        evaluate=lambda m: mesh_heldout_error(m, held.cameras, held.truth),
    )
    assert (
        res.timestep == 181 and res.nfe == 2 * 10
    )  # 10 DDIM steps from t = 181, CFG-doubled, one target round
    assert res.error_after < 0.88 * res.error_before
    assert res.losses[-1] < 0.3 * res.losses[0]
    assert np.array_equal(res.mesh.faces, mesh.faces) and np.array_equal(res.mesh.vertices, mesh.vertices)
    assert res.mesh.colors.min() >= 0 and res.mesh.colors.max() <= 1


def test_cli_refine_steps(tmp_path, capsys):
    den = toy_denoiser()
    ply = den.scene.save_ply(tmp_path / "toy.ply")
    args = ["export-mesh", str(ply), "--resolution", "24", "--refine-size", "16", "--json"]
    assert main([*args, "--refine-steps", "31", "--out", str(tmp_path / "a")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["refine_timestep"] == 181 and rep["refine_nfe"] == 2 * 20  # targets re-made after 30 steps
    assert rep["heldout_l1_after"] < rep["heldout_l1_before"]
    assert main([*args, "--refine-steps", "-1", "--out", str(tmp_path / "b")]) == 2
    assert "refine-steps" in capsys.readouterr().err


def test_readme_mesh_example_runs(tmp_path, monkeypatch, capsys):
    import re
    from pathlib import Path

    readme = Path(__file__).resolve().parents[1] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(encoding="utf-8"), flags=re.S)
    block = next(b for b in blocks if "refine_mesh_colors" in b)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, str(readme), "exec"), {"__name__": "readme"})
    m = re.search(r"(\d+) faces; held-out L1 ([0-9.]+) -> ([0-9.]+)", capsys.readouterr().out)
    assert m and int(m.group(1)) <= 2000 and float(m.group(3)) < float(m.group(2))
    assert (tmp_path / "toy_refined.ply").stat().st_size > 2000 * 13


def test_reference_view_term_with_a_zero123_denoiser():
    pytest.importorskip("diffusers")
    from microdreamer.loop import Reference
    from microdreamer.zero123 import tiny_zero123

    den = tiny_zero123(seed=0)
    mesh = extract_mesh(toy_denoiser().scene, threshold=0.2, resolution=24)
    grey = Mesh(mesh.vertices, mesh.faces, np.full_like(mesh.colors, 0.5))
    green = torch.ones(1, 3, 32, 32)
    green[:, [0, 2], 8:24, 8:24] = 0.1  # a green square on white
    den.set_reference(green, elevation=0.0)
    ref = Reference(green, (green[:, :1] < 0.5).float(), 0.0)
    cfg = RefineConfig(render_size=16, steps=20, views=2, guidance_weight=0.0)  # the reference term alone
    res = refine_mesh_colors(grey, den, cfg, reference=ref)
    assert res.nfe == 2 * 10 and res.losses[-1] < 0.2 * res.losses[0]
    # the vertices facing the reference camera (azimuth 0: +z) turned green; those facing away stayed grey
    front = mesh.vertices[:, 2] > np.percentile(mesh.vertices[:, 2], 90)
    back = mesh.vertices[:, 2] < np.percentile(mesh.vertices[:, 2], 10)
    assert res.mesh.colors[front, 1].mean() - res.mesh.colors[front, 0].mean() > 0.3
    assert np.allclose(res.mesh.colors[back], 0.5, atol=1e-4)


def test_cli_image_refinement_needs_a_model(tmp_path, capsys):
    ply = toy_denoiser().scene.save_ply(tmp_path / "toy.ply")
    rc = main(
        ["export-mesh", str(ply), "--refine-steps", "5", "--input", "x.png", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "needs --model" in err and len(err.splitlines()) == 1


def test_cli_image_refinement_seeds_the_denoisers_vae_noise(tmp_path, capsys, monkeypatch):
    pytest.importorskip("diffusers")
    import microdreamer.zero123 as z123
    from PIL import Image

    z123.tiny_zero123(seed=0).save_pretrained(tmp_path / "z")
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:24, 8:24] = (200, 40, 40, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    ply = toy_denoiser().scene.save_ply(tmp_path / "toy.ply")
    loaded = []
    real = z123.load_denoiser
    monkeypatch.setattr(z123, "load_denoiser", lambda *a, **k: loaded.append(real(*a, **k)) or loaded[-1])
    args = ["export-mesh", str(ply), "--resolution", "24", "--refine-steps", "1", "--refine-size", "16"]
    args += ["--input", str(tmp_path / "in.png"), "--model", str(tmp_path / "z"), "--seed", "7"]
    assert main([*args, "--out", str(tmp_path / "o"), "--json"]) == 0, capsys.readouterr().err
    assert (
        json.loads(capsys.readouterr().out)["refine_nfe"] == 2 * 10
    )  # one CFG target from t = 181 on 50 steps
    assert loaded[0].generator.initial_seed() == 7  # the VAE posterior noise follows --seed, as in `run`


def test_zero123_targets_are_made_from_bilinear_shrunk_renders(monkeypatch):
    # zero123_utils.refine: F.interpolate(pred_rgb, (256, 256), mode="bilinear") before encoding (SIR: bicubic);
    # main2.py grows the refined images back to the render size bilinearly
    pytest.importorskip("diffusers")
    import torch.nn.functional as F
    from microdreamer import refine as refine_module
    from microdreamer.mesh_render import render_mesh
    from microdreamer.zero123 import tiny_zero123

    den = tiny_zero123(seed=0)  # VAE input 32 px
    den.set_reference(torch.ones(1, 3, 32, 32), elevation=0.0)
    mesh = extract_mesh(toy_denoiser().scene, threshold=0.2, resolution=16)
    seen = []

    def recording(denoiser, images, cameras, **kw):
        seen.append((images, cameras))
        return torch.full_like(images, 0.25)

    monkeypatch.setattr(refine_module, "sir_targets", recording)
    cfg = RefineConfig(render_size=64, steps=1, views=2, lr=0.0)
    refine_mesh_colors(mesh, den, cfg)
    ((images, cams),) = seen
    v = torch.from_numpy(mesh.vertices)
    full = render_mesh(v, torch.from_numpy(mesh.faces), torch.from_numpy(mesh.colors), cams).image
    assert torch.allclose(
        images, F.interpolate(full, (32, 32), mode="bilinear", align_corners=False), atol=1e-6
    )
    assert not torch.allclose(
        images, F.interpolate(full, (32, 32), mode="bicubic", align_corners=False), atol=1e-3
    )
