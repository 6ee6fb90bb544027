"""MVDream / ImageDream adapters: the camera embedding against MVDream's own code and closed forms, the batch layout
the UNet receives, CFG and the call counter, loading from the port's folder layout (the port's real UNet class,
imported from a fetched checkout, where one exists), and SIR through the adapters."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("diffusers")

from microdreamer.cameras import orbit_cameras
from microdreamer.gaussians import GaussianModel
from microdreamer.multiview import MultiViewDenoiser, mvdream_camera, tiny_multiview
from microdreamer.presets import get_preset
from microdreamer.sir import run_sir

from gen_common.checkpoint import CheckpointError

MVDREAM = Path(os.environ.get("MVDREAM_OFFICIAL", "/work/.mirror/bytedance+MVDream/repo"))
PORT = Path(os.environ.get("MVDREAM_DIFFUSERS_PORT", "/work/.mirror/ashawkey+mvdream_diffusers/repo"))


def _git_show(repo: Path, path: str) -> str:
    if not repo.exists():
        pytest.skip(f"checkout not found at {repo}")
    return subprocess.run(
        ["git", "-C", str(repo), "show", f"HEAD:{path}"], capture_output=True, text=True, check=True
    ).stdout


def _exec_module(name: str, source: str, tmp: Path):
    path = tmp / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def dens():
    out = {}
    tok = None
    for fam in ("mvdream", "imagedream"):
        d = tiny_multiview(fam, seed=0, tokenizer=tok)
        tok = d.tokenizer
        d.set_prompt("a red teapot", "blurry")
        if fam == "imagedream":
            img = torch.ones(1, 3, 32, 32)
            img[..., 8:24, 8:24] = torch.tensor([0.8, 0.2, 0.1]).view(1, 3, 1, 1)
            d.set_reference(img)
        out[fam] = d
    return out


def _cams(els=(0.0, -10.0, 5.0, 0.0), base=-170.0):
    return orbit_cameras(list(els), [base + 90 * i for i in range(4)], 2.5, size=32)


# ---- the camera embedding -------------------------------------------------------------------------------------
def test_camera_closed_form_front_and_side():
    # azimuth 0: camera on +z (OpenGL) → Blender −y; azimuth 90: on +x. Rotation columns (right, up, back).
    front = torch.tensor([[1.0, 0, 0, 0], [0, 0, -1, -1], [0, 1, 0, 0], [0, 0, 0, 1]])
    side = torch.tensor([[0.0, 0, 1, 1], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
    emb = mvdream_camera(orbit_cameras([0.0, 0.0], [0.0, 90.0], 2.5, size=32))
    assert torch.allclose(emb, torch.stack([front, side]).reshape(2, 16), atol=1e-6)


def test_camera_is_the_release_row_swap_of_the_orbit_pose():
    cams = _cams((-30.0, 12.0, 0.0, 45.0), base=-133.0)
    c = cams.c2w_opengl().clone()
    c = c[:, [0, 2, 1, 3]]  # mvdream_utils.train_step: to Blender (flip y & z), then normalise
    c[:, 1] *= -1
    c[:, :3, 3] /= c[:, :3, 3].norm(dim=-1, keepdim=True)
    assert torch.allclose(mvdream_camera(cams), c.reshape(4, 16).float(), atol=1e-6)


def test_camera_matches_mvdream_get_camera(tmp_path):
    cu = _exec_module("mvdream_camera_utils", _git_show(MVDREAM, "mvdream/camera_utils.py"), tmp_path)
    for elevation, start in [(15.0, 0.0), (0.0, 30.0), (-20.0, -170.0)]:
        ref = cu.get_camera(4, elevation=elevation, azimuth_start=start)  # MVDream: +elevation looks down
        ours = mvdream_camera(
            orbit_cameras([-elevation] * 4, [start + 90 * i for i in range(4)], 2.5, size=32)
        )
        assert torch.allclose(ours, ref, atol=1e-5)


# ---- what the UNet receives ------------------------------------------------------------------------------------
class _Recorder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.calls = []

    def forward(self, **kw):
        self.calls.append({k: (v.clone() if torch.is_tensor(v) else v) for k, v in kw.items()})
        return kw["x"] * 0 + kw["timesteps"].float().view(-1, 1, 1, 1) / 1000


@pytest.mark.parametrize("family", ["mvdream", "imagedream"])
def test_unet_inputs_layout(dens, family):
    d = dens[family]
    rec = _Recorder()
    r = MultiViewDenoiser(
        rec, d.vae, family=family, image_encoder=d.image_encoder, image_size=32, clip_size=16
    )
    r.text, r.image = d.text, d.image
    cams = _cams()
    x = torch.randn(4, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    r.eps(x, 601, cams, guidance_scale=2.0)
    r.eps(x, 601, cams, guidance_scale=2.0, uncond_only=True, doubled=False)
    both, unc = rec.calls
    f = 5 if family == "imagedream" else 4
    cam = mvdream_camera(cams)
    if f == 5:  # ImageDream's reference frame: zero camera, zero latent
        cam = torch.cat([cam, torch.zeros(1, 16)])
    neg, pos = d.text
    assert both["num_frames"] == f and unc["num_frames"] == f
    assert torch.equal(both["camera"], torch.cat([cam, cam])) and torch.equal(unc["camera"], cam)
    assert torch.equal(both["x"][:4], x) and torch.equal(both["x"][f : f + 4], x)
    assert torch.equal(both["timesteps"], torch.full((2 * f,), 601))
    # [uncond, cond]: the negative prompt first, as guidance/*_utils.py
    assert torch.equal(both["context"][:f], neg.expand(f, -1, -1))
    assert torch.equal(both["context"][f:], pos.expand(f, -1, -1))
    assert torch.equal(unc["context"], neg.expand(f, -1, -1))
    if f == 5:
        tok, lat = d.image
        assert both["x"][4].abs().sum() == 0 and both["x"][9].abs().sum() == 0
        assert both["ip"].shape == (10, *tok.shape[1:]) and both["ip"][:5].abs().sum() == 0
        assert torch.equal(both["ip"][5:], tok.expand(5, -1, -1))
        assert both["ip_img"].shape == (2, *lat.shape[1:]) and both["ip_img"][0].abs().sum() == 0
        assert torch.equal(both["ip_img"][1], lat[0])
        assert unc["ip"].abs().sum() == 0 and unc["ip_img"].abs().sum() == 0
    else:
        assert "ip" not in both and "ip_img" not in both
    with pytest.raises(ValueError, match="groups of 4"):
        r.eps(x[:3], 601, cams.index([0, 1, 2]), guidance_scale=2.0)


@pytest.mark.parametrize("family", ["mvdream", "imagedream"])
def test_cfg_combines_halves_and_counts_like_zero123(dens, family):
    d = dens[family]
    d.counter.reset()
    cams = _cams()
    x = torch.randn(4, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    e1 = d.eps(x, 501, cams, guidance_scale=1.0)
    e3 = d.eps(x, 501, cams, guidance_scale=3.0)
    eu = d.eps(x, 501, cams, guidance_scale=3.0, uncond_only=True, doubled=False, phase="inversion")
    eu2 = d.eps(x, 501, cams, guidance_scale=3.0, uncond_only=True, doubled=True, phase="inversion")
    assert e3.shape == x.shape
    assert torch.allclose(eu, eu2, atol=1e-5)  # the doubled batch's unconditional half is the same ε
    assert torch.allclose(e3, eu + 3 * (e1 - eu), atol=1e-4)
    assert not torch.allclose(e1, eu, atol=1e-4)  # the prompt (and image) condition matters
    assert d.counter.nfe == 2 + 2 + 1 + 2 and d.counter.calls == 4
    assert d.counter.by_phase == {"sample": 4, "inversion": 3}
    other = d.eps(x, 501, _cams(base=-100.0), guidance_scale=3.0)
    assert not torch.allclose(other, e3, atol=1e-4)  # the cameras reach the network


def test_v_prediction_is_converted_to_eps(dens):
    d = dens["mvdream"]
    a = float(d.alphas_cumprod[400])
    g = torch.Generator().manual_seed(2)
    x0, eps = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    xt = a**0.5 * x0 + (1 - a) ** 0.5 * eps
    v = a**0.5 * eps - (1 - a) ** 0.5 * x0
    d.prediction_type = "v_prediction"
    try:
        assert torch.allclose(d._to_eps(v, xt, 400), eps, atol=1e-5)
    finally:
        d.prediction_type = "epsilon"


def test_vae_sample_repeats_under_the_adapters_generator(dens):
    d = dens["mvdream"]
    img = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    d.generator.manual_seed(7)
    a, b = d.encode(img), d.encode(img)
    d.generator.manual_seed(7)
    assert torch.equal(d.encode(img), a) and not torch.allclose(a, b)  # a run repeats; draws differ within it


# ---- loading -----------------------------------------------------------------------------------------------------
def test_folder_round_trip_and_refusals(dens, tmp_path):
    d = dens["imagedream"]
    d.save_pretrained(tmp_path / "id")
    d2 = MultiViewDenoiser.from_pretrained(tmp_path / "id")
    assert d2.family == "imagedream" and d2.image_size == 32 and d2.clip_size == 16
    d2.set_prompt("a red teapot", "blurry")
    assert torch.allclose(d2.text[1], d.text[1], atol=1e-6)
    d2.image = d.image  # the VAE latent of the reference is sampled; share it
    cams, x = _cams(), torch.randn(4, 4, 16, 16, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(
        d2.eps(x, 301, cams, guidance_scale=2.0), d.eps(x, 301, cams, guidance_scale=2.0), atol=1e-5
    )
    # a UNet class that is not on the index: refused unless the caller supplies it
    cfg = (tmp_path / "id" / "unet" / "config.json").read_text()
    (tmp_path / "id" / "unet" / "config.json").write_text(cfg.replace("TinyMultiViewUNet", "SomeOtherUNet"))
    with pytest.raises(ValueError, match="unet_class="):
        MultiViewDenoiser.from_pretrained(tmp_path / "id")
    # damaged files: one-line user errors (CheckpointError / ValueError), never a raw parser traceback
    (weights,) = (tmp_path / "id" / "unet").glob("*.safetensors")
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        MultiViewDenoiser.from_pretrained(tmp_path / "id", unet_class=type(d.unet))
    weights.write_bytes(good)
    index = tmp_path / "id" / "model_index.json"
    good_index = index.read_text()
    index.write_text("{ not json")
    with pytest.raises(ValueError, match=r"model_index\.json is not valid JSON"):
        MultiViewDenoiser.from_pretrained(tmp_path / "id", unet_class=type(d.unet))
    index.write_text(good_index)
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(FileNotFoundError, match=r"no \.safetensors"):
        MultiViewDenoiser.from_pretrained(tmp_path / "id", unet_class=type(d.unet))
    with pytest.raises(FileNotFoundError, match="neither a Stable-Zero123 nor an MVDream"):
        MultiViewDenoiser.from_pretrained(tmp_path)


def _port_module(tmp: Path, monkeypatch):
    """The port's mv_unet.py, run with stand-ins for xformers (SDPA), einops (its four patterns) and kiui."""
    source = _git_show(PORT, "mv_unet.py")
    import diffusers.models.modeling_utils  # noqa: F401  (before the stand-ins: diffusers probes for xformers)

    def rearrange(x, pattern, **k):
        if pattern == "(b f) l c -> b (f l) c":
            return x.reshape(-1, k["f"] * x.shape[1], x.shape[2])
        if pattern == "b (f l) c -> (b f) l c":
            return x.reshape(-1, x.shape[1] // k["f"], x.shape[2])
        if pattern == "b c h w -> b (h w) c":
            return x.flatten(2).transpose(1, 2)
        if pattern == "b (h w) c -> b c h w":
            return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], k["h"], k["w"])
        raise NotImplementedError(pattern)

    ops = types.SimpleNamespace(
        memory_efficient_attention=lambda q, k, v, attn_bias=None, op=None: F.scaled_dot_product_attention(
            q, k, v
        )
    )
    stubs = {
        "xformers": types.SimpleNamespace(ops=ops),
        "xformers.ops": ops,
        "einops": types.SimpleNamespace(rearrange=rearrange, repeat=None),
        "kiui": types.SimpleNamespace(),
        "kiui.cam": types.SimpleNamespace(orbit_camera=None),
    }
    for k, v in stubs.items():
        monkeypatch.setitem(sys.modules, k, v)
    (tmp / "port").mkdir()
    return _exec_module("mv_unet", source, tmp / "port"), source


def test_port_unet_loads_and_gets_the_release_layout(dens, fast_presets, tmp_path, monkeypatch, capsys):
    """The port's own MultiViewUNetModel (ImageDream variant, tiny config), saved in the port's layout, loads by
    ``unet_class`` and by ``trust_remote_code``; its ε equals the batch assembled as imagedream_utils.pred_noise
    does (official camera_utils for the camera)."""
    port, source = _port_module(tmp_path, monkeypatch)
    cu = _exec_module("mvdream_camera_utils", _git_show(MVDREAM, "mvdream/camera_utils.py"), tmp_path)
    cfg = {
        "image_size": 32,
        "in_channels": 4,
        "out_channels": 4,
        "model_channels": 32,
        "num_res_blocks": 1,
        "attention_resolutions": [1],
        "channel_mult": [1, 2],
        "num_head_channels": 16,
        "context_dim": 32,
        "camera_dim": 16,
        "transformer_depth": 1,
        "ip_dim": 4,
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = port.MultiViewUNetModel.from_config(cfg).eval()
        unet.register_to_config(
            **cfg
        )  # as the port's converter does: its __init__ does not record the config
        for p in unet.parameters():  # the port zero-initialises its output layers
            p.data.normal_(0, 0.05)
    d = dens["imagedream"]
    tiny, tiny_enc = d.unet, d.image_encoder
    d.unet = unet
    try:
        import transformers

        enc = transformers.CLIPVisionModel(
            transformers.CLIPVisionConfig(
                hidden_size=1280,
                intermediate_size=16,
                num_hidden_layers=1,
                num_attention_heads=1,
                image_size=16,
                patch_size=8,
            )
        ).eval()  # the port's resampler expects 1280-wide CLIP tokens (ViT-H/14)
        d.image_encoder = enc
        d.save_pretrained(tmp_path / "port-folder")
    finally:
        d.unet, d.image_encoder = tiny, tiny_enc
    (tmp_path / "port-folder" / "unet" / "mv_unet.py").write_text(source)
    folder = tmp_path / "port-folder"
    a = MultiViewDenoiser.from_pretrained(folder, unet_class=port.MultiViewUNetModel)
    b = MultiViewDenoiser.from_pretrained(folder, trust_remote_code=True)
    c = MultiViewDenoiser.from_pretrained(folder)  # this package's MultiViewUNet reads the port's weights
    assert type(c.unet).__name__ == "MultiViewUNet"
    img = torch.ones(1, 3, 32, 32)
    img[..., 8:24, 8:24] = 0.3
    for m in (a, b, c):
        m.set_prompt("a red teapot", "blurry")
        torch.manual_seed(0)
        m.set_reference(img)
    b.image = c.image = a.image
    cams = _cams()
    x = torch.randn(4, 4, 16, 16, generator=torch.Generator().manual_seed(4))
    ea, eb = a.eps(x, 501, cams, guidance_scale=2.0), b.eps(x, 501, cams, guidance_scale=2.0)
    assert torch.allclose(ea, eb, atol=1e-5)
    assert torch.allclose(c.eps(x, 501, cams, guidance_scale=2.0), ea, atol=1e-4)
    # the release's batch: 4 views + a zero 5th frame, [neg, pos], zero ip/ip_img for neg, 5th frame dropped
    pose = cams.c2w_opengl()
    cam = cu.normalize_camera(cu.convert_opengl_to_blender(pose)).float()
    cam = torch.cat([cam, torch.zeros(1, 16)]).repeat(2, 1)
    neg, pos = a.text
    tok, lat = a.image
    x5 = torch.cat([x, torch.zeros(1, 4, 16, 16)])
    with torch.no_grad():
        out = a.unet(
            x=torch.cat([x5, x5]),
            timesteps=torch.full((10,), 501),
            context=torch.cat([neg.repeat(5, 1, 1), pos.repeat(5, 1, 1)]),
            num_frames=5,
            camera=cam,
            ip=torch.cat([torch.zeros_like(tok).repeat(5, 1, 1), tok.repeat(5, 1, 1)]),
            ip_img=torch.cat([torch.zeros_like(lat), lat]),
        )
    e_u, e_c = out[:4], out[5:9]
    assert torch.allclose(ea, e_u + 2.0 * (e_c - e_u), atol=1e-5)
    assert ea.abs().mean() > 1e-3
    # the console script with the port's class: importable by name, or the file shipped in the folder
    import json

    from microdreamer.cli import main

    monkeypatch.setitem(sys.modules, "mv_unet", port)
    img_path = _rgba(tmp_path / "in.png")
    base = ["run", "--model", str(folder), "--input", str(img_path), *FAST]
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "cli")]) == 0  # this package's MultiViewUNet reads the folder
    rep = json.loads(capsys.readouterr().out)
    assert rep["preset"] == "imagedream" and rep["nfe"] == 18  # auto: the folder's preset
    assert main([*base, "--unet-class", "nope:X", "--out", str(tmp_path / "cli-bad")]) == 2
    assert "cannot import nope:X" in capsys.readouterr().err


@pytest.mark.parametrize("ip_dim", [0, 16])
def test_own_multiview_unet_matches_the_ports_class(tmp_path, monkeypatch, ip_dim):
    """microdreamer.mvunet.MultiViewUNet takes the port's state dict as is (strict) and gives its output, for
    MVDream (no ip) and ImageDream (ip_dim 16 as released) at a tiny width; two levels, attention at both."""
    from microdreamer.mvunet import MultiViewUNet

    port, _ = _port_module(tmp_path, monkeypatch)
    cfg = {
        "image_size": 32,
        "in_channels": 4,
        "out_channels": 4,
        "model_channels": 32,
        "num_res_blocks": 2,
        "attention_resolutions": [1, 2],
        "channel_mult": [1, 2],
        "num_head_channels": 16,
        "context_dim": 32,
        "camera_dim": 16,
        "transformer_depth": 1,
        "use_checkpoint": False,
        "ip_dim": ip_dim,
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        ref = port.MultiViewUNetModel.from_config(cfg).eval()
        for p in ref.parameters():
            p.data.normal_(0, 0.05)
    ours = MultiViewUNet.from_config(cfg).eval()
    ours.load_state_dict(ref.state_dict())  # strict: same names, same shapes
    g = torch.Generator().manual_seed(2)
    f = 5 if ip_dim else 4
    kw = {
        "x": torch.randn(2 * f, 4, 8, 8, generator=g),
        "timesteps": torch.tensor([501] * f + [301] * f),
        "context": torch.randn(2 * f, 7, 32, generator=g),
        "num_frames": f,
        "camera": torch.randn(2 * f, 16, generator=g),
    }
    if ip_dim:
        kw["ip"] = torch.randn(2 * f, 5, 1280, generator=g)
        kw["ip_img"] = torch.randn(2, 4, 8, 8, generator=g)
    with torch.no_grad():
        want = ref(**{k: (v.clone() if torch.is_tensor(v) else v) for k, v in kw.items()})
        got = ours(**kw)
    assert want.abs().mean() > 1e-2 and torch.allclose(got, want, atol=1e-4)


# ---- SIR ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["mvdream", "imagedream"])
def test_one_sir_iteration(dens, family):
    d = dens[family]
    d.counter.reset()
    p = get_preset(
        family, render_size=32, total_steps=2, inner_steps=2, init_steps=1, num_pts=300, denoise_steps=4
    )
    m = GaussianModel.blob(p.num_pts, generator=torch.Generator().manual_seed(0))
    r = run_sir(m, d, p, generator=torch.Generator().manual_seed(0))
    assert r.t2 == [751, 751]  # N = 4, t_start 0.8: index int(4·0.2) = 0
    # init: the whole chain (4 steps); then DDIM from 751 (4 steps), all CFG-doubled; inversion t1 → t2 undoubled
    assert d.counter.by_phase["sample"] == 2 * 4 + 2 * 4
    # t1 = inverse grid[int(0.751·4·0.6)] = 251; the unconditional inversion runs 251 → 501 → 751 (2 calls)
    assert r.t1[1] == 251 and d.counter.by_phase["inversion"] == 2
    assert r.steps == 1 + 2 and len(m) > 0
    with pytest.raises(ValueError, match="is for a zero123 denoiser"):
        run_sir(m, d, get_preset("sai"))


# ---- the console script ------------------------------------------------------------------------------------------
@pytest.fixture
def fast_presets(monkeypatch):
    from dataclasses import replace

    from microdreamer.presets import PRESETS

    for name in ("mvdream", "imagedream"):
        fast = replace(PRESETS[name], denoise_steps=4, inner_steps=2, init_steps=1, num_pts=300)
        monkeypatch.setitem(PRESETS, name, fast)


def _rgba(path: Path) -> Path:
    import numpy as np
    from PIL import Image

    a = np.zeros((32, 32, 4), np.uint8)
    a[8:24, 8:24] = (200, 60, 30, 255)
    Image.fromarray(a, "RGBA").save(path)
    return path


FAST = ["--iterations", "2", "--render-size", "32", "--mesh-format", "none", "--gif-frames", "0"]
FAST += ["--filter-white", "0", "--json"]


def test_run_mvdream_and_imagedream_from_local_folders(dens, fast_presets, tmp_path, capsys):
    import json

    from microdreamer.cli import main

    dens["mvdream"].save_pretrained(tmp_path / "mv")
    dens["imagedream"].save_pretrained(tmp_path / "id")
    args = ["run", "--model", str(tmp_path / "mv"), "--prompt", "a teapot", "--preset", "mvdream"]
    rc = main([*args, "--out", str(tmp_path / "o1"), *FAST])
    rep = json.loads(capsys.readouterr().out)
    # init: 4 doubled steps; SIR iteration: 2 inversion + 4 doubled steps (auto is tested with the port's UNet)
    assert rc == 0 and rep["preset"] == "mvdream" and rep["nfe"] == 8 + 2 + 8 and rep["calls"] == 4 + 2 + 4
    img = _rgba(tmp_path / "in.png")
    args = ["run", "--model", str(tmp_path / "id"), "--input", str(img), "--preset", "imagedream"]
    rc = main([*args, "--out", str(tmp_path / "o2"), *FAST])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["preset"] == "imagedream" and rep["nfe"] == 18 and rep["primitives"] > 0
    assert {p.name for p in (tmp_path / "o2").iterdir()} == {"gaussians.ply", "history.json"}


def test_run_refuses_a_preset_for_another_family(dens, tmp_path, capsys):
    from microdreamer.cli import main

    (tmp_path / "z123" / "clip_camera_projection").mkdir(parents=True)  # the Stable-Zero123 layout
    dens["mvdream"].save_pretrained(tmp_path / "mv")
    img = _rgba(tmp_path / "in.png")
    cases = [
        (
            ["--model", str(tmp_path / "z123"), "--input", str(img), "--preset", "mvdream"],
            "is for a mvdream denoiser",
        ),
        (["--model", str(tmp_path / "mv"), "--prompt", "x", "--preset", "sai"], "is for a zero123 denoiser"),
        (["--model", str(tmp_path / "mv"), "--prompt", "x", "--preset", "imagedream"], "is for a imagedream"),
        (["--model", str(tmp_path / "mv"), "--input", str(img)], "MVDream is text-to-3D"),
        (["--model", str(tmp_path / "mv")], "give a text prompt"),
        (["--model", str(tmp_path / "z123"), "--preset", "sai"], "conditioned on an image"),
    ]
    capsys.readouterr()  # the save's progress bars
    for i, (args, msg) in enumerate(cases):
        assert main(["run", *args, "--out", str(tmp_path / f"o{i}")]) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / f"o{i}" / "gaussians.ply").exists()


@pytest.mark.gpu
@pytest.mark.parametrize("family", ["mvdream", "imagedream"])
def test_adapter_on_cuda_matches_cpu(dens, family):
    d = dens[family]
    cams, x = _cams(), torch.randn(4, 4, 16, 16, generator=torch.Generator().manual_seed(5))
    ref = d.eps(x, 501, cams, guidance_scale=2.0)
    text, image = d.text, d.image
    try:
        d.to("cuda")
        d.text = tuple(t.cuda() for t in text)
        d.image = None if image is None else tuple(t.cuda() for t in image)
        got = d.eps(x.cuda(), 501, cams, guidance_scale=2.0)
        assert got.device.type == "cuda" and torch.allclose(got.cpu(), ref, atol=1e-4)
    finally:
        d.to("cpu")
        d.text, d.image = text, image


@pytest.mark.parametrize("ip_dim", [0, 16])
def test_released_config_has_the_ports_parameter_names_and_shapes(tmp_path, monkeypatch, ip_dim):
    """At the released size (sd-v2-base.yaml / sd_v2_base_ipmv.yaml, built on the meta device: no memory) every
    tensor of the port's state dict, hence of the released safetensors, has its twin in MultiViewUNet."""
    from microdreamer.mvunet import MultiViewUNet

    port, _ = _port_module(tmp_path, monkeypatch)
    cfg = {
        "image_size": 32,
        "in_channels": 4,
        "out_channels": 4,
        "model_channels": 320,
        "attention_resolutions": [4, 2, 1],
        "num_res_blocks": 2,
        "channel_mult": [1, 2, 4, 4],
        "num_head_channels": 64,
        "transformer_depth": 1,
        "context_dim": 1024,
        "use_checkpoint": False,
        "camera_dim": 16,
        "ip_dim": ip_dim,
    }
    with torch.device("meta"):
        ref = port.MultiViewUNetModel(**cfg)
        ours = MultiViewUNet.from_config(cfg)
    want = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert got == want
    # the README's figures: 690 tensors / 868 M parameters (MVDream), 773 / 942 M (ImageDream)
    n_params = sum(math.prod(shape) for shape in got.values())
    assert (len(got), round(n_params / 1e6)) == {0: (690, 868), 16: (773, 942)}[ip_dim]
