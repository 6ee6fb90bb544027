import math

import pytest
import torch
from icl_dynamics.data import X1Dist, generate_sequences
from icl_dynamics.model import LinearSelfAttention, LSAConfig, predict

from gen_common.checkpoint import CheckpointError


@pytest.fixture
def x():
    return generate_sequences(
        6, 9, 3, X1Dist.gaussian(1.0), generator=torch.Generator().manual_seed(0), dtype="complex128"
    )


def paper_loop(wpv, wkq, x):
    """The paper's formula position by position: ŷ_{t+1} = W^{PV} (E_t E_tᴴ) W^{KQ} e_t / (t − 1)."""
    _m, T, _d = x.shape
    e = torch.cat([x, torch.nn.functional.pad(x[:, :-1], (0, 0, 1, 0))], dim=-1)
    out = []
    for t in range(2, T):  # t tokens in the prefix
        Et = e[:, :t].transpose(1, 2)  # (m, 2d, t)
        out.append((wpv @ Et @ Et.mH @ wkq @ e[:, t - 1, :, None])[..., 0] / (t - 1))
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("strategy", ["cumsum", "blocked", "direct"])
def test_prediction_matches_the_papers_formula(x, strategy):
    g = torch.Generator().manual_seed(1)
    wkq = torch.randn(6, 6, dtype=torch.complex128, generator=g)
    wpv = torch.randn(3, 6, dtype=torch.complex128, generator=g)
    torch.testing.assert_close(predict(wpv, wkq, x, strategy=strategy), paper_loop(wpv, wkq, x))


def test_initialisation_is_one_gd_step_on_in_context_ols(x):
    """At W^{KQ}[d:, :d] = aI, W^{PV}[:, :d] = bI the model predicts Ŵ_t x_t with Ŵ_t = η ∇-step from 0 on
    ½ Σ_{i=2}^{t} ‖x_i − W x_{i−1}‖², i.e. Ŵ_t = (ab/(t−1)) Σ_i x_i x_{i−1}ᴴ (the mesa-optimizer)."""
    model = LinearSelfAttention(LSAConfig(3, a0=0.7, b0=1.3, dtype="complex128"))
    pred = model(x)
    T = x.shape[1]
    for t in range(2, T):  # 1-indexed query position
        W_hat = torch.zeros(x.shape[0], 3, 3, dtype=torch.complex128)
        for i in range(2, t + 1):
            W_hat += x[:, i - 1, :, None] * x[:, i - 2, None, :].conj()  # −∇ at W = 0
        W_hat *= 0.7 * 1.3 / (t - 1)
        torch.testing.assert_close(pred[:, t - 2], (W_hat @ x[:, t - 1, :, None])[..., 0])
    assert model.ab == pytest.approx(0.91)
    assert model.max_offdiag == 0.0


def test_phase_gauge_leaves_predictions_and_ab_unchanged(x):
    model = LinearSelfAttention(LSAConfig(3, 0.4, 0.9, "complex128"))
    before, ab = model(x).detach(), model.ab
    rot = complex(math.cos(0.8), math.sin(0.8))
    with torch.no_grad():
        model.wkq.mul_(rot)
        model.wpv.mul_(1 / rot)
    torch.testing.assert_close(model(x).detach(), before)
    assert model.ab == pytest.approx(ab)
    official = float((model.a.real * model.b.real).mean())  # the official code's Re(a)·Re(b) is not invariant
    assert official == pytest.approx(0.36 * math.cos(0.8) ** 2)


def test_save_and_load_round_trip(tmp_path, x):
    model = LinearSelfAttention(LSAConfig(3, 0.3, 0.6, "complex128"))
    with torch.no_grad():
        model.wkq.add_(0.01j)
    model.save_pretrained(tmp_path / "m")
    again = LinearSelfAttention.from_pretrained(tmp_path / "m")
    assert again.config == model.config
    torch.testing.assert_close(again(x), model(x).detach())
    with pytest.raises(FileExistsError):
        model.save_pretrained(tmp_path / "m")
    with pytest.raises(CheckpointError):
        LinearSelfAttention.from_pretrained(tmp_path / "m", d=4)


def test_bad_sequences(x):
    model = LinearSelfAttention(LSAConfig(3))
    with pytest.raises(ValueError, match="dimension 2"):
        model(x[..., :2])
    with pytest.raises(ValueError, match="T >= 3"):
        model(x[:, :2])
    bad = x.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(bad)
