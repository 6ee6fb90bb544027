import numpy as np
import pytest
import torch
from posecrafter.metrics import fid, frechet_distance, fvd, l1, lpips, psnr, ssim
from posecrafter.video_io import VideoError, read_video, write_gif, write_strip


def _frames(seed=0, n=2, h=24, w=24):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_l1_psnr_closed_form():
    a = np.full((1, 16, 16, 3), 100, np.uint8)
    b = a + np.uint8(10)
    assert l1(a, b) == pytest.approx(10 / 255)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100))
    assert psnr(a, a) == float("inf")
    with pytest.raises(ValueError, match="differ in shape"):
        l1(a, b[:, :8])


def test_ssim_identity_and_constant_shift():
    x = _frames()
    assert ssim(x, x) == pytest.approx(1.0)
    a = torch.full((1, 1, 16, 16), 0.4, dtype=torch.float64)
    b = a + 0.2  # constant images: only the luminance term (2μxμy + C1)/(μx² + μy² + C1) remains
    c1 = 0.01**2
    assert ssim(a, b) == pytest.approx((2 * 0.4 * 0.6 + c1) / (0.4**2 + 0.6**2 + c1))
    assert ssim(x, _frames(1)) < 0.2


def test_lpips_with_a_user_backbone():
    def backbone(x):
        return [x, torch.nn.functional.avg_pool2d(x, 2)]

    x, y = _frames(0), _frames(1)
    assert lpips(x, x, backbone) == pytest.approx(0.0, abs=1e-12)
    assert lpips(x, y, backbone) > 0.1
    assert lpips(x, y, backbone, weights=[torch.zeros(3), torch.zeros(3)]) == 0.0


def test_frechet_closed_form_and_fid_fvd():
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    c1, c2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 9.0])
    # diagonal covariances: ‖Δμ‖² + Σ (σ₁ − σ₂)²
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(5 + 1 + 1 + 0)
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(4000, 2))
    assert fid(feats, feats, lambda f: f) == pytest.approx(0.0, abs=1e-9)
    shifted = fid(feats, feats + np.array([3.0, 0.0]), lambda f: f)
    assert shifted == pytest.approx(9.0, rel=1e-6)
    vids = [rng.normal(size=(4, 2)) for _ in range(50)]
    assert fvd(vids, vids, lambda v: v.mean(0)) == pytest.approx(0.0, abs=1e-9)


def _frechet_symmetric(mu1, cov1, mu2, cov2):
    """The Fréchet distance with the symmetric square root of Σ₁^½ Σ₂ Σ₁^½ (posecrafter's former formula)."""
    w, v = np.linalg.eigh(cov1)
    s1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = s1 @ cov2 @ s1
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_equals_the_symmetric_form_on_random_features(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(40, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(30, 6)) @ rng.normal(size=(6, 6)) + rng.normal(size=6)
    stats = [(f.mean(0), np.cov(f, rowvar=False)) for f in (a, b)]
    ref = _frechet_symmetric(*stats[0], *stats[1])
    assert frechet_distance(*stats[0], *stats[1]) == pytest.approx(ref, rel=1e-9)
    assert fid(a, b, lambda f: f) == pytest.approx(ref, rel=1e-9)


def test_video_round_trip_and_bad_files(tmp_path):
    x = _frames(n=3)
    write_gif(x, tmp_path / "v.gif")
    back = read_video(tmp_path / "v.gif")
    assert back.shape == x.shape
    write_strip([x, x[:2]], tmp_path / "s.png")
    assert read_video(tmp_path / "s.png").shape == (1, 2 * 26, 3 * 26, 3)
    (tmp_path / "bad.gif").write_bytes(b"not a gif")
    with pytest.raises(VideoError, match="could not decode"):
        read_video(tmp_path / "bad.gif")
    with pytest.raises(VideoError, match="no such"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "d").mkdir()
    with pytest.raises(VideoError, match="no image files"):
        read_video(tmp_path / "d")


def test_mp4_round_trip(tmp_path):
    pytest.importorskip("av")
    from posecrafter.video_io import write_mp4

    x = (
        np.repeat(np.linspace(0, 255, 32, dtype=np.uint8)[None, None, :, None], 32, 1)
        .repeat(3, 3)
        .repeat(4, 0)
    )
    write_mp4(x, tmp_path / "v.mp4", fps=4)
    back = read_video(tmp_path / "v.mp4")
    assert back.shape == x.shape
    assert np.abs(back.astype(int) - x.astype(int)).mean() < 8  # lossy codec, same picture
