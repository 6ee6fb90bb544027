"""The DCE identity (RADD Theorem 2) and the reparameterisation (Theorem 1) on exact toys."""

from __future__ import annotations

import radd
import torch

from gen_common.testing import assert_close


def _draw(toy: radd.ExactToy, n: int, seed: int) -> torch.Tensor:
    idx = toy.probs.multinomial(n, replacement=True, generator=torch.Generator().manual_seed(seed))
    return toy.sequences[idx]


def test_enumeration_equals_neg_log_prob(toy_56):
    x = _draw(toy_56, 3, 0)
    nll = radd.exact_nll(toy_56, x)
    assert_close(nll, -toy_56.log_prob(x), rtol=1e-9, atol=1e-9)
    assert bool((nll > 5).all())  # not a degenerate toy: ~L·log V scale


def test_identity_needs_the_true_conditionals(toy_56):
    """Another distribution's conditionals give a different value: the check above is not vacuous."""
    other = radd.ExactToy.random(5, 6, torch.Generator().manual_seed(99))
    x = _draw(toy_56, 2, 1)
    assert not torch.allclose(radd.exact_nll(other, x), -toy_56.log_prob(x), atol=1e-3)


def test_conditional_enumeration_with_positions(toy_56):
    """Scoring only the last 3 positions gives −log p(x_{3:} | x_{:3}) = −log p(x) + log p(x_{:3})."""
    x = _draw(toy_56, 2, 2)
    pos = torch.tensor([False, False, False, True, True, True])
    nll = radd.exact_nll(toy_56, x, positions=pos)
    prompt = x.clone()
    prompt[:, 3:] = toy_56.mask_id
    # p(x_{:3}) = Σ_y p(y) over sequences y that agree with the prompt (brute force over V^L)
    agree = (toy_56.sequences[None, :, :3] == x[:, None, :3]).all(-1).double()
    log_marg = (agree @ toy_56.probs).log()
    assert_close(nll, -toy_56.log_prob(x) + log_marg, rtol=1e-6, atol=1e-6)


def test_theorem1_concrete_score_is_scalar_times_conditional(toy_56):
    """p_t(x̂)/p_t(x_t) = e^{−σ̄}/(1 − e^{−σ̄}) · p₀(x̂ⁱ | unmasked x_t) for x̂ = x_t with masked position i set."""
    g = torch.Generator().manual_seed(3)
    sched = radd.LogLinearSchedule()
    for t in (0.2, 0.5, 0.9):
        alpha = 1.0 - float(radd.schedules.mask_prob(sched, torch.tensor(t, dtype=torch.float64)))
        x0 = _draw(toy_56, 4, int(t * 10))
        x_t, masked = radd.mask_independently(x0, torch.full((4,), 0.5), toy_56.mask_id, g)
        masked[:, 0] = True  # at least one masked position per row
        x_t[:, 0] = toy_56.mask_id
        cond = toy_56(x_t).exp()  # (B, L, V)
        p_xt = toy_56.noisy_marginal(x_t, alpha)
        for v in range(toy_56.vocab_size):
            x_hat = x_t.clone()
            x_hat[:, 0] = v
            ratio = toy_56.noisy_marginal(x_hat, alpha) / p_xt
            assert_close(ratio, alpha / (1 - alpha) * cond[:, 0, v], rtol=1e-9, atol=1e-12)


def test_estimator_expectations_bracket_the_exact_value(toy_56):
    """The floors move the expectations by O(1e-3) relative: k exact, λ and t within 0.2%."""
    x = _draw(toy_56, 2, 4)
    costs = radd.mask_costs(toy_56, x)
    exact = -toy_56.log_prob(x)
    assert_close(radd.estimator_expectation(costs, "k"), exact, rtol=1e-9)
    for est in ("lambda", "t"):
        assert_close(radd.estimator_expectation(costs, est), exact, rtol=2e-3)
        assert not torch.allclose(radd.estimator_expectation(costs, est), exact, rtol=1e-6)
