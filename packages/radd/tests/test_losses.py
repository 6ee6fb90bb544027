"""The four losses: convergence to their exact expectations, equivalences, numerical safety."""

from __future__ import annotations

import math

import pytest
import radd
import torch

from gen_common.testing import assert_close, assert_within_sigmas


def _draw(toy: radd.ExactToy, n: int, seed: int) -> torch.Tensor:
    idx = toy.probs.multinomial(n, replacement=True, generator=torch.Generator().manual_seed(seed))
    return toy.sequences[idx]


@pytest.mark.parametrize("estimator", ["k", "lambda", "t"])
def test_estimate_nll_converges_to_exact_expectation(toy_small, estimator):
    x = _draw(toy_small, 3, 0)
    costs = radd.mask_costs(toy_small, x)
    expected = radd.estimator_expectation(costs, estimator)
    mean, stderr = radd.estimate_nll(
        toy_small, x, 3000, estimator, torch.Generator().manual_seed(1), return_stderr=True
    )
    for b in range(x.shape[0]):
        assert_within_sigmas(float(mean[b]), float(expected[b]), float(stderr[b]), sigmas=5)
        assert float(stderr[b]) < 0.05 * float(expected[b])  # the test has power


def test_t_dce_with_the_geometric_schedule_converges_to_its_exact_expectation(toy_small):
    """t-DCE under σ̄(t) = σ_min^{1−t} σ_max^t: the weight σ̄′/(e^σ̄ − 1) is no longer 1/t, but the change of
    variables π = 1 − e^{−σ̄} makes its expectation ∫ f(π)/π dπ over [π(t_min), π(1)] (RADD Theorem 2's chain)."""
    x = _draw(toy_small, 2, 3)
    costs = radd.mask_costs(toy_small, x)
    sched = radd.GeometricSchedule()
    expected = radd.estimator_expectation(costs, "t", schedule=sched)
    assert_close(
        expected, -toy_small.log_prob(x), rtol=2e-3
    )  # σ_min = 1e-4: π(t_min) ≈ 1e-4, almost the full bound
    mean, stderr = radd.estimate_nll(
        toy_small, x, 3000, "t", torch.Generator().manual_seed(4), schedule=sched, return_stderr=True
    )
    for b in range(x.shape[0]):
        assert_within_sigmas(float(mean[b]), float(expected[b]), float(stderr[b]), sigmas=5)
        assert float(stderr[b]) < 0.05 * float(expected[b])  # the test has power
    # not the log-linear case in disguise: the geometric weight is far from 1/t
    t = torch.linspace(0.05, 0.95, 10, dtype=torch.float64)
    assert not torch.allclose(radd.schedules.dce_weight(sched, t), 1 / t, rtol=0.1)


@pytest.mark.parametrize("estimator", ["k", "lambda", "t"])
def test_conditional_estimates_with_positions(toy_small, estimator):
    x = _draw(toy_small, 2, 5)
    pos = torch.tensor([False, True, False, True])
    costs = radd.mask_costs(toy_small, x, positions=pos)
    assert costs.m.tolist() == [2, 2]
    expected = radd.estimator_expectation(costs, estimator)
    mean, stderr = radd.estimate_nll(
        toy_small, x, 2000, estimator, torch.Generator().manual_seed(2), positions=pos, return_stderr=True
    )
    for b in range(2):
        assert_within_sigmas(float(mean[b]), float(expected[b]), float(stderr[b]), sigmas=5)


def test_t_dse_equals_t_dce_draw_by_draw(fake_model):
    x = torch.randint(0, 7, (16, 32), generator=torch.Generator().manual_seed(0))
    for seed in range(3):
        a = radd.t_dce_loss(fake_model, x, torch.Generator().manual_seed(seed))
        b = radd.t_dse_loss(fake_model, x, torch.Generator().manual_seed(seed))
        assert_close(b, a, rtol=1e-4, atol=1e-4)
        assert float(a.abs().sum()) > 0


def test_t_dce_loglinear_is_floored_lambda_dce():
    """For the log-linear schedule the t-DCE weight σ̄′/(e^σ̄ − 1) is exactly 1/t."""
    sched = radd.LogLinearSchedule()
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    assert_close(radd.schedules.dce_weight(sched, t), 1 / t, rtol=1e-10)
    assert_close(radd.schedules.mask_prob(sched, t), (1 - 1e-3) * t, rtol=1e-10)


def test_loss_gradient_flows_only_through_masked_positions():
    emb = torch.nn.Embedding(8, 7)
    model = lambda x: emb(x)  # noqa: E731 - a masked model: per-position logits from the token id
    x = torch.randint(0, 7, (4, 10), generator=torch.Generator().manual_seed(0))
    loss = radd.k_dce_loss(model, x, torch.Generator().manual_seed(0), mask_id=7).mean()
    loss.backward()
    # visible tokens never contribute: only the mask row of the embedding gets gradient
    assert emb.weight.grad[:7].abs().sum() == 0
    assert emb.weight.grad[7].abs().sum() > 0


@pytest.mark.parametrize("name", sorted(radd.LOSSES))
def test_losses_stay_finite_at_extremes(name):
    """fp16 logits of ±6e4 and λ, t at their floors give finite losses (the official λ-DCE hit −∞: a half-precision
    log_softmax of these logits overflows)."""

    def model(x):
        z = torch.full((*x.shape, 5), -6e4, dtype=torch.float32)
        z[..., 0] = 6e4
        return z.to(torch.float16)

    z = model(torch.zeros(1, 1, dtype=torch.long))
    assert not bool(torch.isfinite(z - z.logsumexp(-1, keepdim=True)).all())  # what half precision would give

    x = torch.randint(0, 5, (4, 8), generator=torch.Generator().manual_seed(0))
    for u in (0.0, 0.5, 1.0 - 1e-12):
        out = radd.get_loss(name)(model, x, u=torch.full((4,), u), mask_id=5)
        assert bool(torch.isfinite(out).all()), (name, u, out)


def test_lambda_floor_value_and_variance(toy_small):
    """With eps = 0 and u → 0 the weight would be 1/λ → ∞; the floor caps it at 1/eps."""
    x = _draw(toy_small, 1, 0).expand(64, -1)
    out = radd.lambda_dce_loss(toy_small, x, torch.Generator().manual_seed(0), u=torch.zeros(64), eps=0.01)
    assert float(out.max()) <= 100 * 4 * 40  # at most 1/eps · L · max(−log p)
    assert bool(torch.isfinite(out).all())


def test_k_dce_masks_exactly_k(toy_small):
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(200, 9, dtype=torch.long)
    k = torch.randint(1, 10, (200,), generator=g)
    pos = torch.rand(200, 9, generator=g) < 0.7
    pos[:, 0] = True
    k = torch.minimum(k, pos.sum(1))
    _, masked = radd.mask_exactly(x, k, 3, g, pos)
    assert torch.equal(masked.sum(1), k)
    assert not bool((masked & ~pos).any())


def test_stratified_draws_are_uniform_and_stratified():
    u = radd.uniform_draws(1000, torch.Generator().manual_seed(0), sampler="stratified")
    counts = torch.histc(u.float(), bins=10, min=0, max=1)
    assert torch.equal(counts, torch.full((10,), 100.0))
    v = radd.uniform_draws(4000, torch.Generator().manual_seed(0), sampler="independent")
    assert abs(float(v.mean()) - 0.5) < 5 * math.sqrt(1 / 12 / 4000)


def test_bad_inputs_raise_clear_errors(fake_model):
    with pytest.raises(ValueError, match="outside"):
        radd.estimate_nll(fake_model, torch.full((1, 32), 7), 2)
    with pytest.raises(ValueError, match="outside"):
        radd.estimate_nll(fake_model, torch.full((1, 32), -1), 2)
    with pytest.raises(ValueError, match="estimator"):
        radd.estimate_nll(fake_model, torch.zeros(1, 32, dtype=torch.long), 2, "q")
    with pytest.raises(ValueError, match="mask id"):
        radd.estimate_nll(
            lambda x: torch.zeros(*x.shape, 3), torch.zeros(1, 4, dtype=torch.long), 2, mask_id=5
        )
    with pytest.raises(ValueError, match="mask_id"):
        radd.estimate_nll(lambda x: x, torch.zeros(1, 4, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="unknown loss"):
        radd.get_loss("nope")


def test_perplexity():
    assert math.isclose(radd.perplexity(torch.tensor([2.0, 4.0]), 6), math.exp(1.0))
