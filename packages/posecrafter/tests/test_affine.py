import numpy as np
import pytest
import torch
from posecrafter.affine import (
    AffineFitError,
    edit_latents,
    fit_affine,
    latent_affine,
    part_mask,
    pixel_to_latent,
    warp_latent,
)
from posecrafter.render import synthetic_pose


def _rot(deg, s, t):
    c, n = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[s * c, -s * n, t[0]], [s * n, s * c, t[1]]])


def test_fit_affine_exact_on_noise_free_points():
    rng = np.random.default_rng(0)
    a = np.array([[1.2, -0.3, 5.0], [0.4, 0.9, -2.0]])
    src = rng.uniform(0, 100, (21, 2))
    dst = src @ a[:, :2].T + a[:, 2]
    np.testing.assert_allclose(fit_affine(src, dst), a, atol=1e-9)
    noisy = dst + rng.normal(0, 0.5, dst.shape)
    fit = fit_affine(src, noisy)

    def sse(m):
        return ((src @ m[:, :2].T + m[:, 2] - noisy) ** 2).sum()

    assert sse(fit) <= sse(a)  # least squares: no affine (the true one included) fits the noisy points better
    assert np.abs(fit[:, :2] - a[:, :2]).max() < 0.02


def test_fit_affine_rejects_too_few_or_collinear():
    with pytest.raises(AffineFitError, match="at least 3"):
        fit_affine(np.zeros((2, 2)), np.zeros((2, 2)))
    line = np.stack([np.arange(5.0), 2 * np.arange(5.0)], 1)
    with pytest.raises(AffineFitError):
        fit_affine(line, line)
    with pytest.raises(ValueError, match="NaN"):
        fit_affine(np.full((3, 2), np.nan), np.zeros((3, 2)))


@pytest.mark.parametrize("factor", [2, 8])
def test_warped_blobs_land_on_targets_within_one_latent_pixel(factor):
    h = w = 24
    a = _rot(20, 1.1, (6.0 * factor / 8, -5.0 * factor / 8))
    c = np.array([w * factor / 2, h * factor / 2])
    src_pix = c + np.array([[-30.0, -20.0], [25.0, -10.0], [0.0, 28.0]]) * factor / 8
    dst_pix = (src_pix - c) @ a[:, :2].T + c + a[:, 2]  # rotate/scale about the centre, then shift
    got = fit_affine(src_pix, dst_pix)
    src_q = pixel_to_latent(src_pix, factor)
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    blobs = torch.zeros(len(src_q), h, w)
    for k, (qx, qy) in enumerate(src_q):
        blobs[k] = torch.exp(-((xs - qx) ** 2 + (ys - qy) ** 2) / 2.0).float()
    warped = warp_latent(blobs, latent_affine(got, factor))
    for k, (tx, ty) in enumerate(pixel_to_latent(dst_pix, factor)):
        peak = divmod(int(warped[k].argmax()), w)
        assert abs(peak[0] - ty) <= 1.0 and abs(peak[1] - tx) <= 1.0


def test_latent_affine_identity_and_translation():
    np.testing.assert_allclose(latent_affine(np.eye(2, 3), 8), np.eye(2, 3))
    t = np.array([[1.0, 0, 16.0], [0, 1.0, -8.0]])
    np.testing.assert_allclose(latent_affine(t, 8)[:, 2], [2.0, -1.0])


def test_edit_pastes_inside_mask_and_skips_unconfident_parts():
    ref_pose = synthetic_pose(32, 32)
    tgt = synthetic_pose(32, 32, shift=(0.1, 0.0), t=0.7)
    tgt.hands[1, :, 2] = 0.0  # right hand not detected
    ref = torch.randn(4, 16, 16, generator=torch.Generator().manual_seed(0))
    init = torch.zeros(1, 4, 16, 16)
    with pytest.warns(UserWarning, match="right_hand"):
        out, rec = edit_latents(init, ref, ref_pose, [tgt], 2)
    assert [r.status for r in rec][:2] == ["edited", "edited"] and rec[2].status.startswith("skipped")
    mask = part_mask(tgt.face[:, :2], (16, 16), 2)
    mask = torch.maximum(mask, part_mask(tgt.hands[0, :, :2], (16, 16), 2))
    assert torch.all(out[0][:, mask == 0] == 0)
    assert (out[0][:, mask == 1] != 0).float().mean() > 0.9
    with pytest.raises(ValueError, match="target poses"):
        edit_latents(init, ref, ref_pose, [tgt, tgt], 2)
