"""The mesh renderer: exact silhouettes and depths of a sphere, the Gaussian rasteriser's camera convention,
perspective-correct barycentrics, colour gradients; nvdiffrast parity on CUDA (skipped here)."""

from __future__ import annotations

import math

import pytest
import torch
from microdreamer.cameras import orbit_cameras
from microdreamer.gaussians import GaussianModel
from microdreamer.mesh import extract_mesh
from microdreamer.mesh_render import interpolate, rasterize_mesh, render_mesh

CENTRE = (0.2, 0.1, -0.05)
SIGMA, OPACITY, TAU = 0.2, 0.9, 0.2
RADIUS = SIGMA * math.sqrt(2 * math.log(OPACITY / TAU))  # the iso-surface: a sphere


def _gauss(centre=CENTRE):
    return GaussianModel.from_activated(
        torch.tensor([centre]),
        torch.full((1, 3), SIGMA),
        torch.tensor([[0.9, 0.2, 0.1]]),
        torch.tensor([OPACITY]),
    )


def _tensors(mesh):
    return torch.from_numpy(mesh.vertices), torch.from_numpy(mesh.faces), torch.from_numpy(mesh.colors)


def _ray_sphere(cams, k, centre, radius):
    """Per-pixel hit mask and camera depth of rays through the pixel centres against the analytic sphere."""
    H = W = cams.width
    tan = math.tan(cams.fovy / 2)
    i, j = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    d_cam = torch.stack(
        [((2 * j + 1) / W - 1) * tan, ((2 * i + 1) / H - 1) * tan, torch.ones(H, W).double()], -1
    )
    R, t = cams.viewmats[k, :3, :3].double(), cams.viewmats[k, :3, 3].double()
    d = d_cam @ R  # world directions Rᵀ d (camera z = 1 along each ray)
    oc = -R.T @ t - torch.tensor(centre).double()
    a, b, c = (d * d).sum(-1), (d * oc).sum(-1), (oc * oc).sum() - radius**2
    disc = b * b - a * c
    hit = disc > 0
    depth = (-b - disc.clamp(min=0).sqrt()) / a  # the ray parameter is the camera z
    return hit, depth


def test_sphere_silhouette_and_depth_match_the_analytic_sphere():
    mesh = extract_mesh(_gauss(), threshold=TAU, resolution=64)
    v, f, c = _tensors(mesh)
    cams = orbit_cameras([0.0, -35.0, 50.0], [0.0, 70.0, -140.0], 2.0, size=64)
    out = render_mesh(v, f, c, cams)
    for k in range(len(cams)):
        hit, depth = _ray_sphere(cams, k, CENTRE, RADIUS)
        mask = out.alpha[k, 0] > 0
        assert hit.sum() > 300
        assert (hit != mask).sum() <= 0.01 * hit.sum()  # only pixel centres within the polygon sagitta differ
        both = hit & mask
        assert (out.depth[k, 0][both].double() - depth[both]).abs().max() < 0.02  # voxel 0.011 at 64³
        assert torch.allclose(out.image[k][:, mask], torch.tensor([[0.9], [0.2], [0.1]]), atol=1e-3)
        assert (out.image[k][:, ~mask] == 1).all()  # white background


def test_same_camera_convention_as_the_gaussian_rasteriser():
    g = _gauss((0.35, 0.3, 0.1))
    mesh = extract_mesh(g, threshold=TAU, resolution=48)
    v, f, c = _tensors(mesh)
    cams = orbit_cameras([-30.0, 20.0], [30.0, 200.0], 2.0, size=48)
    m = render_mesh(v, f, c, cams).alpha[:, 0]
    a = g.render(cams).alpha[:, 0].detach()
    i, j = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    for k in range(2):
        for grid in (i, j):
            cm = (m[k] * grid).sum() / m[k].sum()
            ca = (a[k] * grid).sum() / a[k].sum()
            assert abs(float(cm - ca)) < 0.5  # same place on the pixel grid; flips or half-pixel shifts fail
            assert abs(float(cm) - 23.5) > 2  # off-centre, so a mirrored convention could not pass


def test_barycentrics_are_perspective_correct():
    mesh = extract_mesh(_gauss(), threshold=TAU, resolution=24)
    v, f, _ = _tensors(mesh)
    cams = orbit_cameras([10.0], [45.0], 1.6, size=40)
    frags = rasterize_mesh(v, f, cams)
    p = interpolate(v.double(), f, frags)[0].permute(1, 2, 0)  # the surface point seen at each pixel
    mask = frags.mask[0]
    cam = p[mask] @ cams.viewmats[0, :3, :3].double().T + cams.viewmats[0, :3, 3].double()
    assert torch.allclose(cam[:, 2], frags.depth[0][mask].double(), atol=1e-5)
    # it projects back onto the pixel centre it was rasterised at
    tan = math.tan(cams.fovy / 2)
    px = ((cam[:, 0] / cam[:, 2] / tan + 1) * 40 - 1) / 2
    py = ((cam[:, 1] / cam[:, 2] / tan + 1) * 40 - 1) / 2
    i, j = mask.nonzero().unbind(1)
    assert torch.allclose(px, j.double(), atol=1e-4) and torch.allclose(py, i.double(), atol=1e-4)


def test_colour_gradients_match_finite_differences():
    mesh = extract_mesh(_gauss((0.0, 0.0, 0.0)), threshold=TAU, resolution=10)
    v, f, _ = _tensors(mesh)
    cams = orbit_cameras([0.0, 30.0], [0.0, 100.0], 2.0, size=10)
    frags = rasterize_mesh(v, f, cams)
    colors = torch.rand(len(v), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w = torch.rand(2, 3, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    bg = (0.3, 0.6, 0.9)
    torch.autograd.gradcheck(
        lambda col: (render_mesh(v, f, col, cams, fragments=frags, background=bg).image * w).sum(),
        colors.requires_grad_(True),
    )


def test_view_cosine_faces_the_camera():
    mesh = extract_mesh(_gauss((0.0, 0.0, 0.0)), threshold=TAU, resolution=32)
    v, f, c = _tensors(mesh)
    out = render_mesh(v, f, c, orbit_cameras([20.0], [60.0], 2.0, size=32), normals=True)
    vc = out.viewcos[0, 0][out.alpha[0, 0] > 0]
    assert vc.min() > 0 and vc.max() > 0.99  # outward normals: the disc's centre looks straight at the camera


@pytest.mark.gpu
def test_nvdiffrast_matches_the_torch_rasteriser():
    pytest.importorskip("nvdiffrast.torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    mesh = extract_mesh(_gauss(), threshold=TAU, resolution=64)
    v, f, c = (t.cuda() for t in _tensors(mesh))
    cams = orbit_cameras([0.0, -35.0, 50.0], [0.0, 70.0, -140.0], 2.0, size=128).to("cuda")
    ref = render_mesh(v, f, c, cams, backend="torch", normals=True)
    got = render_mesh(v, f, c, cams, backend="nvdiffrast", normals=True)
    same = ref.fragments.mask == got.fragments.mask
    assert same.float().mean() > 0.999  # edge pixels may fall to either side
    both = ref.fragments.mask & got.fragments.mask
    assert (ref.depth[:, 0][both] - got.depth[:, 0][both]).abs().max() < 1e-3
    assert (ref.image - got.image).abs().mean() < 1e-3
    # the view cosine interpolates the same normals with both backends' barycentrics
    assert (ref.viewcos[:, 0][both] - got.viewcos[:, 0][both]).abs().max() < 1e-3


def test_nvdiffrast_wrapper_plumbing_with_a_stand_in(monkeypatch):
    """The nvdiffrast wrapper (clip space, triangle ids, barycentric order, depth) against a stand-in that follows
    nvdiffrast's documented output: rast = (u, v, z/w, triangle id + 1), point = u·v0 + v·v1 + (1 − u − v)·v2,
    row 0 at NDC y = −1, pixel centres at NDC (2i + 1)/W − 1."""
    import sys
    import types

    from microdreamer import mesh_render
    from microdreamer.mesh_render import raster_screen

    def rasterize(ctx, clip, tri, resolution):
        H, W = resolution
        out = []
        for c in clip:
            w = c[:, 3].double()
            px = ((c[:, 0] / w + 1) * W - 1) / 2
            py = ((c[:, 1] / w + 1) * H - 1) / 2
            face, bary, _ = raster_screen(px.double(), py.double(), w, tri.long(), H, W, 1e-6)
            r = torch.zeros(H * W, 4)
            r[:, :2] = bary[:, :2].float()
            r[:, 2] = (c[:, 2] / c[:, 3])[tri.long()].mean(1)[face.clamp(min=0)] * (face >= 0)
            r[:, 3] = (face + 1).float()
            out.append(r.reshape(H, W, 4))
        return torch.stack(out), None

    fake = types.SimpleNamespace(rasterize=rasterize, RasterizeCudaContext=lambda device=None: object())
    monkeypatch.setitem(sys.modules, "nvdiffrast", types.ModuleType("nvdiffrast"))
    monkeypatch.setitem(sys.modules, "nvdiffrast.torch", fake)
    mesh = extract_mesh(_gauss(), threshold=TAU, resolution=24)
    v, f, _ = _tensors(mesh)
    cams = orbit_cameras([20.0, -40.0], [10.0, 250.0], 2.0, size=32)
    got = mesh_render._rasterize_nvdiffrast(v, f, cams)
    ref = rasterize_mesh(v, f, cams, backend="torch")
    assert torch.equal(got.face, ref.face)
    assert torch.allclose(got.bary, ref.bary, atol=1e-5) and torch.allclose(got.depth, ref.depth, atol=1e-5)


def test_mipmapped_lookup_filters_a_minified_checkerboard():
    from microdreamer.mesh_render import sample_texture

    i, j = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    checker = ((i + j) % 2).double()[..., None].expand(64, 64, 3).contiguous()
    uv = (
        torch.rand(1, 2, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.05
    )
    flat = sample_texture(checker, uv)
    assert torch.allclose(sample_texture(checker, uv, torch.zeros(1, 1, 16, 16)), flat)  # lod 0: bilinear
    far = sample_texture(checker, uv, torch.full((1, 1, 16, 16), 4.0))  # 16 texels per pixel
    assert (far - 0.5).abs().max() < 1e-9 and (flat - 0.5).abs().max() > 0.2  # averaged, not aliased
    const = torch.full((64, 64, 3), 0.3, dtype=torch.float64)
    assert torch.allclose(
        sample_texture(const, uv, torch.full((1, 1, 16, 16), 2.7)), torch.tensor(0.3).double()
    )
    tex = checker.clone().requires_grad_(True)
    sample_texture(tex, uv, torch.full((1, 1, 16, 16), 3.5)).sum().backward()
    assert (
        tex.grad > 0
    ).float().mean() > 0.5  # a minified lookup reaches most texels, bilinear only 4 per pixel


def test_masked_texture_lookup_equals_the_full_one():
    from microdreamer.mesh_render import sample_texture

    g = torch.Generator().manual_seed(1)
    tex = torch.rand(32, 32, 3, dtype=torch.float64, generator=g)
    uv = torch.rand(2, 2, 8, 8, dtype=torch.float64, generator=g)
    lod = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=g) * 4
    mask = torch.rand(2, 8, 8, generator=g) > 0.4
    full = sample_texture(tex, uv, lod) * mask[:, None]
    assert torch.allclose(sample_texture(tex, uv, lod, mask), full)
