"""The CPU rasteriser: exact gradients (float64 gradcheck), parity with a dense per-pixel reference, closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from microdreamer.cameras import orbit_cameras
from microdreamer.rasterizer import quaternion_to_rotation, rasterize_gaussians


def _scene(n=5, seed=1, dtype=torch.float64, scale=0.15):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) * 2 - 1) * 0.3
    scales = scale * (1 + torch.rand(n, 3, generator=g))
    quats = torch.randn(n, 4, generator=g)
    op = torch.rand(n, generator=g) * 0.7 + 0.2
    col = torch.rand(n, 3, generator=g)
    return [t.to(dtype) for t in (means, scales, quats, op, col)]


def _dense_reference(means, scales, quats, op, col, cams, bg):
    """Slow path: every pixel against every Gaussian, sorted by depth, composited with an explicit product."""
    V, H, W = len(cams), cams.height, cams.width
    R = quaternion_to_rotation(quats)
    M = R * scales[:, None, :]
    cov3 = M @ M.transpose(-1, -2)
    out = torch.empty(V, 3, H, W, dtype=means.dtype)
    tan_y = math.tan(cams.fovy / 2)
    for v in range(V):
        Rw, tw = cams.viewmats[v, :3, :3].to(means), cams.viewmats[v, :3, 3].to(means)
        cam = means @ Rw.T + tw
        order = torch.argsort(cam[:, 2])
        img = torch.zeros(H * W, 3, dtype=means.dtype)
        T = torch.ones(H * W, dtype=means.dtype)
        ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
        px, py = xs.reshape(-1).to(means), ys.reshape(-1).to(means)
        for i in order.tolist():
            x, y, z = cam[i]
            if z <= 0.2:
                continue
            fx = cams.fx
            J = torch.tensor([[fx / z, 0, -fx * x / z**2], [0, fx / z, -fx * y / z**2]], dtype=means.dtype)
            c2 = J @ Rw @ cov3[i] @ Rw.T @ J.T + 0.3 * torch.eye(2, dtype=means.dtype)
            mu = torch.stack([fx * x / z + (W - 1) / 2, fx * y / z + (H - 1) / 2])
            d = torch.stack([px - mu[0], py - mu[1]], -1)
            power = -0.5 * (d @ torch.linalg.inv(c2) * d).sum(-1)
            a = torch.clamp(op[i] * torch.exp(power), max=0.99)
            a = torch.where(a >= 1 / 255, a, torch.zeros_like(a))
            img += (T * a)[:, None] * col[i]
            T = T * (1 - a)
            _ = tan_y
        img += T[:, None] * bg
        out[v] = img.reshape(H, W, 3).permute(2, 0, 1)
    return out


def test_matches_dense_reference():
    cams = orbit_cameras([10, -30, 0], [20, 200, -90], 2.0, size=12)
    scene = _scene(n=7)
    bg = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    fast = rasterize_gaussians(*scene, cams, clamp_output=False).image
    slow = _dense_reference(*scene, cams, bg)
    assert torch.allclose(fast, slow, atol=1e-10)


def test_gradcheck_float64():
    cams = orbit_cameras([10, -30], [20, 200], 2.0, size=8)
    params = [t.requires_grad_() for t in _scene(n=4)]

    def f(*a):
        r = rasterize_gaussians(*a, cams, clamp_output=False)
        return r.image, r.alpha, r.depth

    # fast_mode checks J·u against J_numeric·u for random u (one backward per input instead of one per output pixel)
    assert torch.autograd.gradcheck(f, tuple(params), eps=1e-6, atol=1e-5, fast_mode=True)
    assert torch.autograd.gradcheck(
        lambda *a: f(*a)[0][:, :, 3:5, 3:5], tuple(params), eps=1e-6, atol=1e-5
    )  # full Jacobian on a patch


def test_single_gaussian_centre_pixel_is_closed_form():
    # an isotropic Gaussian at the origin projects onto the centre pixel of an odd-sized image: α = o there
    cams = orbit_cameras([0.0], [0.0], 2.0, size=9)
    o, c = 0.7, torch.tensor([[0.2, 0.4, 0.9]])
    r = rasterize_gaussians(
        torch.zeros(1, 3), torch.full((1, 3), 0.1), torch.tensor([[1.0, 0, 0, 0]]), torch.tensor([o]), c, cams
    )
    expected = o * c[0] + (1 - o) * torch.ones(3)
    assert torch.allclose(r.image[0, :, 4, 4], expected, atol=1e-6)
    assert r.alpha[0, 0, 4, 4].item() == pytest.approx(o, abs=1e-6)
    assert r.depth[0, 0, 4, 4].item() == pytest.approx(o * 2.0, abs=1e-5)  # alpha-weighted camera z
    # symmetric image around the centre
    assert torch.allclose(r.image[0], r.image[0].flip(-1), atol=1e-6)


def test_nothing_visible_gives_background_and_zero_grads():
    cams = orbit_cameras([0.0], [0.0], 2.0, size=6)
    means = torch.tensor([[0.0, 0.0, 5.0]], requires_grad=True)  # behind the camera at z = +2
    r = rasterize_gaussians(
        means,
        torch.full((1, 3), 0.1),
        torch.tensor([[1.0, 0, 0, 0]]),
        torch.tensor([0.9]),
        torch.zeros(1, 3),
        cams,
        background=(0.1, 0.2, 0.3),
    )
    assert torch.allclose(r.image, torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1).expand(1, 3, 6, 6))
    r.image.sum().backward()
    assert means.grad.abs().sum() == 0
    assert int(r.radii.sum()) == 0


def test_front_gaussian_occludes_back_one():
    cams = orbit_cameras([0.0], [0.0], 2.0, size=9)  # camera at +z looking at the origin
    means = torch.tensor([[0.0, 0.0, 0.3], [0.0, 0.0, -0.3]])
    cols = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])
    r = rasterize_gaussians(
        means,
        torch.full((2, 3), 0.1),
        torch.tensor([[1.0, 0, 0, 0]] * 2),
        torch.tensor([0.99, 0.99]),
        cols,
        cams,
    )
    px = r.image[0, :, 4, 4]
    assert px[0] > 0.95 and px[2] < 0.02  # front (red) wins with α = 0.99


def test_scanline_spans_keep_exactly_the_alpha_test_pairs():
    # large anisotropic Gaussians crossing the image borders: the spans must hold every pair with α ≥ 1/255
    # (counted here by brute force over all pixels) and the image must match the per-pixel reference
    cams = orbit_cameras([25, -40], [60, 300], 2.0, size=10)
    scene = _scene(n=6, seed=3, scale=0.35)
    r = rasterize_gaussians(*scene, cams, clamp_output=False)
    slow = _dense_reference(*scene, cams, torch.ones(3, dtype=torch.float64))
    assert torch.allclose(r.image, slow, atol=1e-10)
    from microdreamer.rasterizer import _project

    means, scales, quats, op, _ = scene
    M = quaternion_to_rotation(quats) * scales[:, None, :]
    _, z, ndc, cov2 = _project(means, M @ M.transpose(-1, -2), cams, 0.3)
    px = ((ndc[..., 0] + 1) * 10 - 1) / 2
    py = ((ndc[..., 1] + 1) * 10 - 1) / 2
    ys, xs = torch.meshgrid(
        torch.arange(10.0, dtype=torch.float64), torch.arange(10.0, dtype=torch.float64), indexing="ij"
    )
    d = torch.stack([xs.reshape(1, 1, -1) - px[..., None], ys.reshape(1, 1, -1) - py[..., None]], -1)
    q = torch.einsum("vnpi,vnij,vnpj->vnp", d, torch.linalg.inv(cov2), d)
    alpha = op[None, :, None] * torch.exp(-0.5 * q)
    expected = int(((alpha >= 1 / 255) & (z > 0.2)[..., None]).sum())
    assert 0 < r.num_pairs == expected


def test_candidates_without_a_kept_pair_render_background():
    # o just above 1/255: the α ≥ 1/255 ellipse is ~1e-5 px wide, 5e-4 px from the centre pixel, so the span's
    # round-off slack proposes that pixel and the α test rejects it
    cams = orbit_cameras([0.0], [0.0], 2.0, size=9)
    shift = 5e-4 * 2.0 / cams.fx  # world x for 5e-4 px at depth 2
    means = torch.tensor([[shift, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    o = torch.tensor([(1 + 1e-9) / 255], dtype=torch.float64, requires_grad=True)
    one = torch.ones(1, 3, dtype=torch.float64)
    r = rasterize_gaussians(
        means, 0.01 * one, torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64), o, one, cams
    )
    assert r.num_pairs == 0 and torch.equal(r.image, torch.ones_like(r.image))
    r.image.sum().backward()
    assert means.grad.abs().sum() == 0 and o.grad.abs().sum() == 0
