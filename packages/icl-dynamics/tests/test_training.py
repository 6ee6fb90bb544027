import importlib

import pytest
import torch
from icl_dynamics.data import X1Dist, generate_sequences
from icl_dynamics.model import LinearSelfAttention, LSAConfig
from icl_dynamics.theory import empirical_moments, moments, predict_theory
from icl_dynamics.training import GDConfig, TrainingDivergedError, train

train_module = importlib.import_module("icl_dynamics.training")  # the package re-exports the function `train`


def data(dist, m, d=3, T=20, seed=0, balanced=False, dtype="complex64"):
    gen = torch.Generator().manual_seed(seed)
    return generate_sequences(m, T, d, dist, generator=gen, dtype=dtype, balanced=balanced)


def model(d=3, a0=0.5, b0=1.5, dtype="complex64"):
    return LinearSelfAttention(LSAConfig(d, a0, b0, dtype))


@pytest.fixture(scope="module")
def gaussian_run():
    x, x_test = data(X1Dist.gaussian(1.0), 2000, balanced=True), data(X1Dist.gaussian(1.0), 4000, seed=1)
    return train(model(), x, x_test=x_test)


def test_gaussian_ab_matches_the_closed_form(gaussian_run):
    """Acceptance: d = 3, T = 20, full complex matrices, default (automatic) rate, trained until ab settles:
    ab within 2% of ab* = (T−2)m₄/[(T−2)m₆ + (d−1)m₂m₄H_{T−2}] = 0.1856 (Gauss–Hermite x₁ with the Gaussian's
    moments, so that the comparison is not swamped by the Monte Carlo noise of m₆)."""
    pred = predict_theory(moments(X1Dist.gaussian(1.0), 3), 3, 20)
    assert pred.predicted_ab == pytest.approx(0.18559, abs=1e-5)
    assert gaussian_run.converged
    assert gaussian_run.ab == pytest.approx(pred.predicted_ab, rel=0.02)
    assert gaussian_run.model.max_offdiag < 0.05  # the structure stays (nearly) diagonal
    s = gaussian_run.summary()
    assert s["ratio_last"] == pytest.approx(pred.predicted_ratio, rel=0.05)  # on fresh plain-Gaussian data
    assert s["mse_last"] == pytest.approx(pred.predicted_mse_last, rel=0.1)


def test_trajectories_are_recorded(gaussian_run):
    h = gaussian_run.history
    n = gaussian_run.epochs + 1
    assert len(h["loss"]) == len(h["ab"]) == len(h["abs_a"]) == len(h["max_offdiag"]) == n
    assert h["ab"][0] == pytest.approx(0.75)
    assert h["max_offdiag"][0] == 0.0
    assert h["loss"][-1] < h["loss"][0]
    assert len(h["ratio"]) == len(h["test_epoch"]) == n
    assert gaussian_run.snapshots[-1][0] == gaussian_run.epochs


def test_plain_gaussian_data_follow_their_own_moments():
    """With plain Gaussian draws ab* moves with the sample (m₆'s Monte Carlo error is several % at m = 4000):
    the diagonal dynamics land on the closed form at the sample's own moments, and full matrices add only a
    small finite-sample correction through their off-diagonal entries."""
    x = data(X1Dist.gaussian(1.0), 4000, seed=3)
    emp = predict_theory(empirical_moments(x[:, 0]), 3, 20)
    diag = train(model(), x, config=GDConfig(eval_every=0, grad_mask="diagonal"))
    full = train(model(), x, config=GDConfig(eval_every=0))
    assert diag.ab == pytest.approx(emp.predicted_ab, rel=0.02)
    assert full.ab == pytest.approx(diag.ab, rel=0.02)


def test_sparse_recovers_w_exactly():
    """Sparse x₁ (±c on one coordinate): ab → 1/c² and the loss and last-position MSE → 0."""
    x, x_test = data(X1Dist.sparse(0.5), 1000, balanced=True), data(X1Dist.sparse(0.5), 500, seed=1)
    result = train(model(a0=0.1, b0=0.1), x, x_test=x_test)
    assert result.ab == pytest.approx(4.0, rel=1e-3)
    assert result.history["loss"][-1] < 1e-6 * result.history["loss"][0]
    assert result.summary()["mse_last"] < 1e-6
    assert result.summary()["ratio_last"] == pytest.approx(1.0, abs=1e-3)


def test_all_ones_grows_off_diagonals_and_leaves_the_formula():
    """All-ones x₁ violates the data condition: off-diagonal weights grow from 0, ab ≠ ab*."""
    x = data(X1Dist.ones(), 1000)
    ones = train(model(), x, config=GDConfig(eval_every=0))
    gauss = train(model(), data(X1Dist.gaussian(1.0), 1000, balanced=True), config=GDConfig(eval_every=0))
    off = ones.history["max_offdiag"]
    assert off[0] == 0.0
    assert off[-1] > 0.06
    assert off[-1] > 2 * gauss.model.max_offdiag
    pred = predict_theory(moments(X1Dist.ones(), 3), 3, 20)
    assert abs(ones.ab / pred.predicted_ab - 1) > 0.05


def test_masks_keep_their_entries_at_zero():
    x = data(X1Dist.ones(), 500)
    diag = train(model(), x, config=GDConfig(grad_mask="diagonal", max_epochs=200, eval_every=0))
    assert diag.model.max_offdiag == 0.0
    # With everything else masked the dynamics are the diagonal ones; their fixed point is the closed form
    # with x₁'s moments even for all-ones x₁ (sign symmetry is only needed to keep the other entries at 0).
    assert diag.ab == pytest.approx(predict_theory(moments(X1Dist.ones(), 3), 3, 20).predicted_ab, rel=0.03)
    off = train(model(), x, config=GDConfig(grad_mask="offdiag", max_epochs=50, eval_every=0))
    d = 3
    block_kq = off.model.wkq.detach()[d:, :d]
    block_pv = off.model.wpv.detach()[:, :d]
    eye = torch.eye(d, dtype=torch.bool)
    assert float(block_kq[~eye].abs().max()) == 0.0
    assert float(block_pv[~eye].abs().max()) == 0.0
    assert off.model.max_offdiag > 0  # the other blocks stay free, as in the official masked run


def test_divergence_is_reported_and_automatic_rate_backs_off(monkeypatch):
    x = data(X1Dist.gaussian(1.0), 200)
    with pytest.raises(TrainingDivergedError, match="smaller learning rate"):
        train(model(), x, config=GDConfig(lr=5.0, max_epochs=200, eval_every=0))
    monkeypatch.setattr(train_module, "automatic_lr", lambda *a, **k: 5.0)
    result = train(model(), x, config=GDConfig(max_epochs=200, max_restarts=8, eval_every=0))
    assert result.restarts > 0
    assert result.lr < 5.0


def test_config_validation():
    with pytest.raises(ValueError, match="grad-mask"):
        GDConfig(grad_mask="upper")
    with pytest.raises(ValueError, match="lr"):
        GDConfig(lr=-1.0)
    with pytest.raises(ValueError, match="--tol must be a finite number"):
        GDConfig(tol=float("nan"))
    with pytest.raises(ValueError, match="--max-epochs must be at least 1"):
        GDConfig(max_epochs=0)
    with pytest.raises(ValueError, match="dimension"):
        train(model(d=4), data(X1Dist.gaussian(1.0), 10))


@pytest.mark.slow
def test_paper_setting_gaussian_ab_matches_the_closed_form():
    """The paper's size (d = 5, T = 100, m = 10 000): ab within 2% of ab* = 0.19191 (variance-reduced x₁)."""
    x = data(X1Dist.gaussian(1.0), 10_000, d=5, T=100, balanced=True)
    result = train(model(d=5), x, config=GDConfig(eval_every=0, max_epochs=1000))
    pred = predict_theory(moments(X1Dist.gaussian(1.0), 5), 5, 100)
    assert result.ab == pytest.approx(pred.predicted_ab, rel=0.02)
    assert result.model.max_offdiag < 0.05
