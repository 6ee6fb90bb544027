"""Fréchet distance, FID/FVD and KID: closed forms, a direct numpy KID, the .npz round trip and the errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("scipy")

from gen_common.metrics import (
    FeatureStats,
    extract_features,
    fid,
    fid_from_features,
    frechet_distance,
    fvd,
    kid,
    load_stats,
    polynomial_mmd,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("method", ["sqrtm", "eig"])
def test_frechet_distance_of_identical_stats_is_zero_and_of_diagonal_gaussians_the_closed_form(method):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 6))
    s = np.cov(a, rowvar=False)
    assert frechet_distance(a.mean(0), s, a.mean(0), s, method=method) == pytest.approx(0, abs=1e-9)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    v1, v2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    # diagonal covariances: Tr((Σ₁Σ₂)^½) = Σ √(v1 v2)
    exact = ((mu1 - mu2) ** 2).sum() + (v1 + v2 - 2 * np.sqrt(v1 * v2)).sum()
    got = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2), method=method)
    assert got == pytest.approx(exact, rel=1e-10)


def test_sqrtm_and_eig_agree_on_full_covariances():
    rng = np.random.default_rng(1)
    s1 = np.cov(rng.normal(size=(40, 8)) @ rng.normal(size=(8, 8)), rowvar=False)
    s2 = np.cov(rng.normal(size=(40, 8)), rowvar=False)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    a = frechet_distance(mu1, s1, mu2, s2, method="sqrtm")
    b = frechet_distance(mu1, s1, mu2, s2, method="eig")
    assert a > 0
    assert a == pytest.approx(b, rel=1e-8)


def test_stats_npz_round_trip_is_pytorch_fid_layout(tmp_path):
    feats = torch.randn(30, 5, generator=_gen(), dtype=torch.float64)
    stats = FeatureStats.from_features(feats)
    np.testing.assert_allclose(stats.mu, feats.numpy().mean(0))
    np.testing.assert_allclose(stats.sigma, np.cov(feats.numpy(), rowvar=False))
    path = stats.save_stats(tmp_path / "ref.npz")
    with np.load(path, allow_pickle=False) as f:  # what pytorch-fid reads
        assert sorted(f.files) == ["mu", "sigma"]
        assert np.array_equal(f["mu"], stats.mu) and np.array_equal(f["sigma"], stats.sigma)
    back = load_stats(path)
    assert np.array_equal(back.mu, stats.mu) and np.array_equal(back.sigma, stats.sigma)
    assert FeatureStats.load_stats(path).dim == 5
    with pytest.raises(FileExistsError, match="overwrite"):
        stats.save_stats(path)
    assert fid_from_features(feats, path) == pytest.approx(0, abs=1e-9)


def test_bad_stats_files_are_one_line_value_errors(tmp_path):
    np.savez(tmp_path / "obj.npz", mu=np.array([object()], dtype=object), sigma=np.eye(1))
    np.savez(tmp_path / "nokey.npz", mean=np.zeros(2))
    np.savez(tmp_path / "nan.npz", mu=np.array([np.nan, 0]), sigma=np.eye(2))
    np.savez(tmp_path / "shape.npz", mu=np.zeros(3), sigma=np.eye(2))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for name, match in [
        ("obj", "plain arrays"),
        ("nokey", "lacks"),
        ("nan", "NaN"),
        ("shape", "mu"),
        ("junk", "readable"),
    ]:
        with pytest.raises(ValueError, match=match) as info:
            load_stats(tmp_path / f"{name}.npz")
        assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError):
        load_stats(tmp_path / "absent.npz")


class TinyExtractor(torch.nn.Module):
    """A random conv net → 6 pooled features (stands in for Inception)."""

    def __init__(self, seed=0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.conv = torch.nn.Conv2d(3, 6, 3, stride=2)

    def forward(self, x):
        return torch.tanh(self.conv(x)).mean(dim=(2, 3))


def test_fid_with_a_tiny_extractor_is_zero_for_identical_sets_and_positive_otherwise(tmp_path):
    ext = TinyExtractor()
    real = torch.rand(40, 3, 16, 16, generator=_gen(0))
    other = torch.rand(40, 3, 16, 16, generator=_gen(1)) ** 2  # darker images: another distribution
    assert fid(real, real, ext, batch_size=7) == pytest.approx(0, abs=1e-8)
    d = fid(other, real, ext)
    assert d > 1e-3
    ref = FeatureStats.from_features(extract_features(real, ext)).save_stats(tmp_path / "real.npz")
    assert fid(other, ref, ext) == pytest.approx(d, rel=1e-9)
    assert fid(extract_features(other, ext), ref) == pytest.approx(d, rel=1e-9)


def test_fvd_is_the_frechet_distance_of_video_features():
    class VideoExtractor(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv3d(3, 5, 2)

        def forward(self, v):  # (N, C, T, H, W), I3D's layout
            return self.conv(v).mean(dim=(2, 3, 4))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ext = VideoExtractor()
    vids = torch.rand(20, 3, 4, 8, 8, generator=_gen(0))
    shifted = vids.flip(2) * 0.5
    assert fvd(vids, vids, ext) == pytest.approx(0, abs=1e-8)
    d = fvd(shifted, vids, ext)
    fa, fb = extract_features(shifted, ext, ndim=5), extract_features(vids, ext, ndim=5)
    assert d > 0
    assert d == pytest.approx(fid_from_features(fa, fb), rel=1e-9)
    with pytest.raises(ValueError, match="videos"):
        fvd(vids[0], vids, ext)


def _numpy_kid(x, y, degree=3, coef=1.0):
    """Bińkowski et al.'s unbiased MMD² with k = (xᵀy/D + 1)³, written out loop by loop."""
    m, d = x.shape
    k = lambda a, b: (a @ b / d + coef) ** degree  # noqa: E731
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (sxx + syy) / (m * (m - 1)) - 2 * sxy / m**2


def test_kid_matches_a_direct_numpy_implementation_and_is_near_zero_for_identical_sets():
    x = torch.randn(12, 4, generator=_gen(0), dtype=torch.float64)
    y = torch.randn(12, 4, generator=_gen(1), dtype=torch.float64) + 0.7
    # subset_size = N: every subset is a permutation of the whole set, so KID is the full-set MMD²
    mean, std = kid(x, y, subsets=3, subset_size=12)
    assert mean == pytest.approx(_numpy_kid(x.numpy(), y.numpy()), rel=1e-10)
    assert std == pytest.approx(0, abs=1e-10)
    assert polynomial_mmd(x, y) == pytest.approx(mean, rel=1e-12)


def test_kid_of_one_set_against_itself_is_near_zero():
    # unbiased: the cross term keeps its diagonal, so a set against itself is O(1/m), not exactly 0
    x = torch.randn(400, 4, generator=_gen(0), dtype=torch.float64)
    same, _ = kid(x, x, subsets=10, subset_size=200)
    shifted, _ = kid(x, x + 0.7, subsets=10, subset_size=200)
    assert shifted > 0.5
    assert abs(same) < 0.03 * shifted


def test_kid_subsets_are_seeded():
    x = torch.randn(60, 4, generator=_gen(0))
    y = torch.randn(50, 4, generator=_gen(1))
    a, b, c = (kid(x, y, subsets=5, subset_size=20, seed=s) for s in (0, 0, 1))
    assert a == b and a != c
    with pytest.raises(ValueError, match="subset_size"):
        kid(x, y, subset_size=51)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2)), "mismatched"),
        (lambda: frechet_distance(np.array([np.nan]), np.eye(1), np.zeros(1), np.eye(1)), "NaN"),
        (lambda: FeatureStats.from_features(torch.randn(1, 3)), "at least 2"),
        (lambda: fid_from_features(torch.randn(5, 3, 2), torch.randn(5, 3)), "features"),
        (lambda: fid_from_features(torch.randn(5, 3), torch.randn(5, 4)), "dimensions differ"),
        (lambda: fid(torch.full((4, 3, 8, 8), float("nan")), torch.rand(4, 3, 8, 8), TinyExtractor()), "NaN"),
        (lambda: fid(torch.rand(4, 8, 8), torch.rand(4, 3, 8, 8), TinyExtractor()), "images"),
        (lambda: kid(torch.randn(5, 3), torch.randn(5, 4), subset_size=5), "differ"),
        (lambda: kid(torch.tensor([[float("inf"), 0.0]] * 4), torch.randn(4, 2), subset_size=4), "NaN"),
    ],
)
def test_bad_inputs_are_one_line_value_errors(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.linalg", None)  # as if scipy were not installed
    with pytest.raises(ImportError, match=r'pip install "gen-common\[metrics\]"'):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2))
    assert frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2), method="eig") == pytest.approx(2)
