import math

import pytest
import torch
from icl_dynamics.data import X1Dist, ar_sequences, generate_sequences
from icl_dynamics.theory import empirical_moments, moments


def test_sequences_follow_the_unitary_ar_recursion():
    g = torch.Generator().manual_seed(0)
    x = generate_sequences(7, 12, 4, X1Dist.gaussian(0.7), generator=g, dtype="complex128")
    assert x.shape == (7, 12, 4)
    assert x.dtype == torch.complex128
    lam = x[:, 1] / x[:, 0]  # W = diag(λ): one ratio per coordinate
    torch.testing.assert_close(lam.abs(), torch.ones_like(lam.abs()))
    torch.testing.assert_close(x[:, 1:], lam[:, None, :] * x[:, :-1])  # x_{t+1} = W x_t at every t
    assert torch.allclose(x.imag[:, 0], torch.zeros(7, 4, dtype=torch.float64))  # x₁ is real


def test_generation_is_deterministic_per_generator():
    def draw(seed):
        return generate_sequences(5, 6, 3, X1Dist.sparse(2.0), generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


def test_families():
    g = torch.Generator().manual_seed(1)
    sp = X1Dist.sparse(2.5).sample(1000, 5, g)
    assert torch.equal((sp != 0).sum(1), torch.ones(1000, dtype=torch.long))
    assert set(sp[sp != 0].abs().unique().tolist()) == {2.5}
    assert torch.equal(X1Dist.ones().sample(3, 2, g), torch.ones(3, 2, dtype=torch.float64))
    cust = X1Dist.custom(lambda n, d, gen: torch.rand(n, d, generator=gen) - 0.5)
    assert cust.sample(4, 3, g).shape == (4, 3)


@pytest.mark.parametrize("dist", [X1Dist.gaussian(1.3), X1Dist.sparse(0.8)])
def test_balanced_draws_have_the_population_moments(dist):
    x1 = dist.sample(4000, 3, torch.Generator().manual_seed(2), balanced=True)
    emp, exact = empirical_moments(x1), moments(dist, 3)
    for k in ("m2", "m4", "m6"):
        assert getattr(emp, k) == pytest.approx(getattr(exact, k), rel=1e-2), k
    assert emp.assumption_holds


def test_ar_sequences_closed_form_matches_powers():
    theta = torch.tensor([[0.3, 2.0]], dtype=torch.float64)
    x1 = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    x = ar_sequences(x1, theta, 40, dtype="complex128")
    lam = torch.polar(torch.ones(2, dtype=torch.float64), theta[0])
    assert torch.allclose(x[0, 39], lam**39 * x1[0].to(torch.complex128))


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="T must be >= 3"):
        generate_sequences(2, 2, 3)
    with pytest.raises(ValueError, match="unknown x1 family"):
        X1Dist("laplace")
    with pytest.raises(ValueError, match="positive"):
        X1Dist.gaussian(-1.0)
    with pytest.raises(ValueError, match="shape"):
        X1Dist.custom(lambda n, d, g: torch.zeros(n)).sample(3, 2)
    with pytest.raises(ValueError, match=r"sampler .* failed: TypeError"):
        X1Dist.custom(lambda n: torch.zeros(n)).sample(3, 2)
    with pytest.raises(ValueError, match="NaN"):
        X1Dist.custom(lambda n, d, g: torch.full((n, d), math.nan)).sample(3, 2)
