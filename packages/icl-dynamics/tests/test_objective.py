import pytest
import torch
from icl_dynamics.data import X1Dist, generate_sequences
from icl_dynamics.objective import ARProblem, ar_loss, loss_and_grad


@pytest.fixture
def setup():
    g = torch.Generator().manual_seed(0)
    x = generate_sequences(12, 8, 3, X1Dist.gaussian(1.0), generator=g, dtype="complex128")
    wkq = torch.randn(6, 6, dtype=torch.complex128, generator=g) * 0.5
    wpv = torch.randn(3, 6, dtype=torch.complex128, generator=g) * 0.5
    return x, wpv, wkq


@pytest.mark.parametrize("strategy", ["cumsum", "blocked", "direct"])
def test_analytic_gradient_equals_autograd(setup, strategy):
    x, wpv, wkq = setup
    wpv_, wkq_ = wpv.clone().requires_grad_(), wkq.clone().requires_grad_()
    loss = ar_loss(wpv_, wkq_, x, strategy="direct")
    loss.backward()
    lg = loss_and_grad(wpv, wkq, ARProblem(x, strategy))
    assert lg.loss == pytest.approx(loss.item(), rel=1e-12)
    torch.testing.assert_close(lg.grad_wpv, wpv_.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(lg.grad_wkq, wkq_.grad, rtol=1e-10, atol=1e-10)


def test_gradient_matches_finite_differences(setup):
    """g_Z = ∂L/∂Re Z + i ∂L/∂Im Z: check both parts of a few entries by central differences."""
    x, wpv, wkq = setup
    lg = loss_and_grad(wpv, wkq, x)
    h = 1e-6
    for name, (i, j) in [("wkq", (4, 1)), ("wkq", (0, 5)), ("wpv", (2, 2)), ("wpv", (1, 4))]:
        for unit in (1.0, 1j):
            dp, dm = wpv.clone(), wpv.clone()
            kp, km = wkq.clone(), wkq.clone()
            target_p, target_m = (kp, km) if name == "wkq" else (dp, dm)
            target_p[i, j] += h * unit
            target_m[i, j] -= h * unit
            fd = (float(ar_loss(dp, kp, x)) - float(ar_loss(dm, km, x))) / (2 * h)
            g = (lg.grad_wkq if name == "wkq" else lg.grad_wpv)[i, j]
            part = g.real if unit == 1.0 else g.imag
            assert float(part) == pytest.approx(fd, rel=1e-6, abs=1e-7), (name, i, j, unit)


def test_loss_is_the_official_normalisation(setup):
    x, wpv, wkq = setup
    zero = loss_and_grad(torch.zeros_like(wpv), torch.zeros_like(wkq), x)
    # With a zero model the loss is ½ Σ_{t=3}^{T} ‖x_t‖² / m.
    assert zero.loss == pytest.approx(0.5 * float(x[:, 2:].abs().square().sum()) / x.shape[0])
