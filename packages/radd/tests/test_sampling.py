"""Samplers: cache parity, NFE statistics against the formula, exactness on toys, infilling, strategies."""

from __future__ import annotations

import math

import pytest
import radd
import torch

from gen_common.testing import assert_close, assert_within_sigmas


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"method": "euler"},
        {"schedule": "geometric"},
        {"schedule": "geometric", "method": "euler"},
        {"remasking": "confidence"},
        {"top_k": 3},
        {"top_p": 0.7, "temperature": 0.8},
        {"temperature": 0.0},
        {"prefix": [1, 2, 3], "suffix": [4, 5]},
    ],
)
def test_cached_equals_uncached(fake_model, kwargs):
    a = radd.sample(fake_model, 24, 32, 40, cache=True, generator=_gen(5), **kwargs)
    rows_cached = fake_model.rows
    b = radd.sample(fake_model, 24, 32, 40, cache=False, generator=_gen(5), **kwargs)
    assert torch.equal(a.tokens, b.tokens)
    assert b.nfe == 40.0
    assert a.nfe < b.nfe
    assert rows_cached == int(a.nfe_per_sequence.sum())
    assert bool((a.tokens < 7).all())


def test_a_stale_cache_would_change_the_samples(fake_model):
    """Control for the parity test: reusing the first evaluation forever gives different tokens."""
    first = {}

    def frozen(x):
        key = x.shape[0]
        if key not in first:
            first[key] = fake_model(torch.full_like(x, 7))
        return first[key][: x.shape[0]]

    frozen.mask_id = 7
    a = radd.sample(fake_model, 24, 32, 20, generator=_gen(5))
    b = radd.sample(frozen, 24, 32, 20, cache=False, generator=_gen(5))
    assert not torch.equal(a.tokens, b.tokens)


@pytest.mark.parametrize("steps", [16, 64, 256])
def test_nfe_matches_expected_formula(steps):
    """Measured NFE per sequence vs steps·(1 − (1 − 1/steps)^L) for L = 32 (within 5σ and within 3%)."""

    def cheap(x):
        return torch.zeros(*x.shape, 4)

    cheap.mask_id = 4
    out = radd.sample(cheap, 2000, 32, steps, generator=_gen(steps))
    expected = radd.expected_nfe(steps, 32)
    assert out.expected_nfe == pytest.approx(expected)
    stderr = float(out.nfe_per_sequence.double().std()) / math.sqrt(2000)
    assert_within_sigmas(out.nfe, expected, stderr, sigmas=5)
    assert abs(out.nfe / expected - 1) < 0.03


def test_expected_nfe_values():
    assert radd.expected_nfe(1024, 1024) == pytest.approx(647.5, abs=0.5)
    assert radd.expected_nfe(2048, 1024) == pytest.approx(806.3, abs=0.5)
    assert 1024 / radd.expected_nfe(1024, 1024) == pytest.approx(1.58, abs=0.01)
    assert 4096 / radd.expected_nfe(4096, 1024) == pytest.approx(4.5, abs=0.1)
    assert radd.expected_nfe(1, 10) == 1.0


def test_reveal_rates_loglinear_analytic_equals_euler():
    n = 50
    expected = 1.0 / (n - torch.arange(n, dtype=torch.float64))
    assert_close(radd.reveal_rates(n, "analytic"), expected, rtol=1e-10)
    assert_close(radd.reveal_rates(n, "euler"), expected, rtol=1e-10)
    geo = radd.reveal_rates(n, "analytic", "geometric")
    assert geo[-1] == 1.0
    assert not torch.allclose(geo, expected)


def _joint_tv(toy: radd.ExactToy, tokens: torch.Tensor) -> float:
    counts = torch.bincount(toy.index(tokens), minlength=toy.probs.numel()).double()
    return 0.5 * float((counts / counts.sum() - toy.probs).abs().sum())


def test_ordered_sampler_samples_the_joint_exactly():
    toy = radd.ExactToy.random(3, 3, _gen(7))
    out = radd.sample_ordered(toy, 20000, 3, generator=_gen(0))
    assert out.nfe == 3.0
    # 27 outcomes, 20k draws: sampling noise in TV is ~0.01
    assert _joint_tv(toy, out.tokens) < 0.03


def test_diffusion_sampler_with_many_steps_samples_the_joint():
    toy = radd.ExactToy.random(3, 3, _gen(7))
    fine = radd.sample(toy, 20000, 3, 300, generator=_gen(1))
    assert _joint_tv(toy, fine.tokens) < 0.03
    # one step reveals all tokens independently from the all-mask marginals: a product distribution, far off
    coarse = radd.sample(toy, 20000, 3, 1, generator=_gen(2))
    assert _joint_tv(toy, coarse.tokens) > 0.05


def test_infilling_keeps_given_tokens_and_conditions_on_them():
    toy = radd.ExactToy.random(3, 3, _gen(8))
    keep = torch.tensor([False, True, False])
    given = (torch.tensor([0, 2, 0]), keep)
    for sampler in (
        lambda: radd.sample(toy, 20000, 3, 200, given=given, generator=_gen(3)),
        lambda: radd.sample_ordered(toy, 20000, 3, given=given, generator=_gen(3)),
    ):
        out = sampler()
        assert bool((out.tokens[:, 1] == 2).all())
        # the conditional p(x0, x2 | x1 = 2) from the joint
        p = toy.probs.reshape(3, 3, 3)[:, 2, :]
        p = p / p.sum()
        counts = torch.zeros(3, 3, dtype=torch.float64)
        counts.index_put_(
            (out.tokens[:, 0], out.tokens[:, 2]), torch.ones(20000, dtype=torch.float64), accumulate=True
        )
        assert 0.5 * float((counts / 20000 - p).abs().sum()) < 0.03


def test_prefix_suffix_and_nfe_with_given(fake_model):
    out = radd.sample(fake_model, 8, 32, 16, prefix=torch.tensor([1, 2]), suffix=[3], generator=_gen(0))
    assert bool((out.tokens[:, :2] == torch.tensor([1, 2])).all())
    assert bool((out.tokens[:, -1] == 3).all())
    assert out.expected_nfe == pytest.approx(radd.expected_nfe(16, 29))
    o = radd.sample_ordered(fake_model, 8, 32, prefix=[1, 2], order="forward", generator=_gen(0))
    assert o.nfe == 30.0
    assert bool((o.tokens[:, :2] == torch.tensor([1, 2])).all())


def test_greedy_equals_top_k_one_and_tiny_top_p(fake_model):
    a = radd.sample(fake_model, 6, 32, 8, temperature=0.0, generator=_gen(0))
    b = radd.sample(fake_model, 6, 32, 8, top_k=1, generator=_gen(0))
    c = radd.sample(fake_model, 6, 32, 8, top_p=1e-6, generator=_gen(0))
    assert torch.equal(a.tokens, b.tokens)
    assert torch.equal(a.tokens, c.tokens)


def test_confidence_reveals_the_scheduled_count_most_confident_first(fake_model):
    """steps = L: one token per step; greedy confidence reveals the argmax-probability position."""
    out = radd.sample(fake_model, 4, 32, 32, remasking="confidence", temperature=0.0, generator=_gen(0))
    assert bool((out.tokens < 7).all())
    assert out.nfe == 32.0  # every step reveals one token, so every step needs a fresh evaluation
    # first reveal: the single most confident position of the all-mask input
    lp = torch.log_softmax(fake_model(torch.full((1, 32), 7)), -1)[0]
    conf, ids = lp.max(-1)
    one = radd.sample(fake_model, 1, 32, 32, remasking="confidence", temperature=0.0, generator=_gen(0))
    first = int(conf.argmax())
    assert int(one.tokens[0, first]) == int(ids[first])


def test_ordered_orders(fake_model):
    perm = radd.generation_order("random", 5, 10, _gen(0))
    assert torch.equal(perm.sort(1).values, torch.arange(10).expand(5, 10))
    assert torch.equal(radd.generation_order("backward", 1, 4)[0], torch.tensor([3, 2, 1, 0]))
    with pytest.raises(ValueError, match="permutation"):
        radd.generation_order(torch.tensor([0, 0, 1]), 1, 3)


def test_sampler_bad_inputs(fake_model):
    with pytest.raises(ValueError, match="steps"):
        radd.sample(fake_model, 1, 32, 0)
    with pytest.raises(ValueError, match="prefix"):
        radd.sample(fake_model, 1, 4, 2, prefix=[1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="real token"):
        radd.sample(fake_model, 1, 32, 2, prefix=[9])
    with pytest.raises(ValueError, match="remasking"):
        radd.sample(fake_model, 1, 32, 2, remasking="greedy")
    with pytest.raises(ValueError, match="must return"):
        radd.sample(lambda x: torch.zeros(x.shape[0], 3), 1, 4, 2, mask_id=3)
    with pytest.raises(ValueError, match="shape"):
        radd.sample(
            fake_model,
            3,
            32,
            2,
            given=(torch.zeros(2, 32, dtype=torch.long), torch.ones(2, 32, dtype=torch.bool)),
        )
    with pytest.raises(ValueError, match="top_p"):
        radd.sample(fake_model, 1, 32, 2, top_p=1.5)


def test_sample_from_uniform_distribution():
    logp = torch.log(torch.tensor([[0.1, 0.0, 0.6, 0.3]])).expand(40000, 4)
    ids, p = radd.categorical.sample_from_uniform(logp, torch.rand(40000, generator=_gen(0)))
    freq = torch.bincount(ids, minlength=4).double() / 40000
    assert_close(freq, torch.tensor([0.1, 0.0, 0.6, 0.3]), atol=0.01)
    assert int((ids == 1).sum()) == 0
    assert_close(p, torch.tensor([0.1, 0.0, 0.6, 0.3])[ids], rtol=1e-6)


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = radd.categorical.filter_logits(logits, top_p=0.8).isfinite()
    assert kept.tolist() == [[True, True, False, False]]
    kept = radd.categorical.filter_logits(logits, top_p=0.81).isfinite()
    assert kept.tolist() == [[True, True, True, False]]
