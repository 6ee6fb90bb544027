"""FID via torchmetrics with a user-supplied feature module (offline), spelling accuracy, sample metrics."""

import pytest
import torch
from bfn_solver.evaluation import fid, load_word_list, spelling_accuracy, to_uint8_images
from bfn_solver.metrics import mmd_rbf, sliced_wasserstein, total_variation

from gen_common.testing import assert_close


class _MeanColour(torch.nn.Module):
    """A tiny feature extractor: per-channel means and stds of uint8 images (6 features)."""

    num_features = 6

    def forward(self, x):
        x = x.float() / 255
        return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1).double()


def _frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    c1, c2 = torch.cov(a.T), torch.cov(b.T)
    w, v = torch.linalg.eigh(c1)
    s1 = v @ torch.diag(w.clamp(min=0).sqrt()) @ v.T
    m = s1 @ c2 @ s1
    tr = torch.linalg.eigvalsh(m).clamp(min=0).sqrt().sum()
    return float((mu1 - mu2).pow(2).sum() + torch.trace(c1) + torch.trace(c2) - 2 * tr)


def test_fid_matches_the_frechet_distance_of_the_features():
    pytest.importorskip("torchmetrics")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(64, 8, 8, 3, generator=g) * 2 - 1
    b = (torch.rand(64, 8, 8, 3, generator=g) * 1.6 - 0.6).clamp(-1, 1)
    value = fid(a, b, feature=_MeanColour())
    fa, fb = _MeanColour()(to_uint8_images(a)), _MeanColour()(to_uint8_images(b))
    assert value == pytest.approx(_frechet(fb, fa), rel=1e-3, abs=1e-6)
    assert fid(a, a, feature=_MeanColour()) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="exactly one"):
        fid(a, b)
    with pytest.raises(FileNotFoundError, match="Inception"):
        fid(a, b, inception_weights="/nonexistent/pt_inception.pth")


def test_spelling_accuracy(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("the\ncat\n# comment\nsat\n")
    assert load_word_list(path) == {"the", "cat", "sat"}
    assert spelling_accuracy(["the_cat_sat_on", "tha cat"], path) == pytest.approx(4 / 6)
    assert spelling_accuracy([], {"a"}) == 0.0


def test_sample_metrics_detect_differences():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2000, 2, generator=g), torch.randn(2000, 2, generator=g)
    z = y + torch.tensor([0.5, 0.0])
    assert sliced_wasserstein(x, y) < 0.1 < sliced_wasserstein(x, z)
    assert mmd_rbf(x, y, 0.5) < 0.01 < mmd_rbf(x, z, 0.5)
    probs = torch.tensor([[0.5, 0.0], [0.0, 0.5]], dtype=torch.float64)
    assert total_variation(torch.tensor([[0, 0], [1, 1]]), probs) == pytest.approx(0.0)
    assert_close(torch.tensor(total_variation(torch.tensor([[0, 1], [0, 1]]), probs)), torch.tensor(1.0))


def test_inception_weights_with_pickled_code_are_refused(tmp_path):
    """torch-fidelity would unpickle the weights file with weights_only=False; `fid` reads it safely first."""
    pytest.importorskip("torchmetrics")
    from gen_common.checkpoint import CheckpointError

    path = tmp_path / "pt_inception-evil.pth"
    torch.save({"fc.weight": torch.zeros(1), "payload": _MeanColour}, path)  # a class reference: code
    a = torch.zeros(4, 8, 8, 3)
    with pytest.raises(CheckpointError, match="refused"):
        fid(a, a, inception_weights=path)
    torch.save({"fc.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="Inception weights"):
        fid(a, a, inception_weights=path)


@pytest.mark.slow
def test_fid_with_an_inception_weights_file(tmp_path, monkeypatch):
    """The whole inception_weights path offline: a randomly initialised FID Inception saved as a .pth."""
    pytest.importorskip("torch_fidelity")
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with monkeypatch.context() as m:  # build the network without its (downloaded) weights
        m.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        torch.manual_seed(0)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), tmp_path / "pt_inception-2015-12-05-random.pth")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(6, 16, 16, 3, generator=g) * 2 - 1
    b = torch.rand(6, 16, 16, 3, generator=g) * 0.2 - 0.9
    path = tmp_path / "pt_inception-2015-12-05-random.pth"
    same, diff = fid(a, a, inception_weights=path), fid(a, b, inception_weights=path)
    assert abs(same) < 1e-2 * max(1.0, diff)
    assert diff > 0


def test_fid_against_precomputed_npz_statistics(tmp_path):
    pytest.importorskip("scipy")
    from gen_common.metrics import FeatureStats

    g = torch.Generator().manual_seed(1)
    a = torch.rand(32, 8, 8, 3, generator=g) * 2 - 1
    b = torch.rand(32, 8, 8, 3, generator=g) * 1.2 - 1
    stats = FeatureStats.from_features(_MeanColour()(to_uint8_images(b)))
    path = stats.save_stats(tmp_path / "ref.npz")
    value = fid(a, path, feature=_MeanColour())
    assert value > 0
    assert value == pytest.approx(fid(a, b, feature=_MeanColour()), rel=1e-9)
