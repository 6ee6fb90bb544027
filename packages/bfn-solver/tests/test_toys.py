"""The exact denoisers against independent computations: the score of the closed-form marginal density
(continuous) and brute-force Bayes with the full Gaussian likelihood (discrete)."""

import math

import torch
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
from bfn_solver.toy import CategoricalJoint, ExactCategoricalModel, ExactMixtureModel, GaussianMixture

from gen_common.testing import assert_close


def test_mixture_eps_is_minus_sigma_times_the_score():
    """Tweedie: ε̂(μ) = −σ ∇ log p_t(μ) with p_t the mixture of N(γ m_k, γ² s_k² + γ(1 − γ))."""
    mix = GaussianMixture.create(
        [0.3, 0.7], [[0.5, -0.2, 0.1], [-0.4, 0.3, 0.0]], [[0.1, 0.2, 0.3], [0.2, 0.1, 0.05]]
    )
    sch = ContinuousSchedule(0.01)
    model = ExactMixtureModel(mix, sch)
    t = 0.4
    gam = float(sch.gamma(t))
    mu = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_(
        True
    )
    var = gam**2 * mix.stds**2 + gam * (1 - gam)
    logp = torch.logsumexp(
        torch.log(mix.weights)
        - 0.5 * (((mu[:, None] - gam * mix.means) ** 2) / var + torch.log(2 * math.pi * var)).sum(-1),
        dim=1,
    )
    (score,) = torch.autograd.grad(logp.sum(), mu)
    eps = model(mu.detach(), torch.full((7,), t, dtype=torch.float64))
    assert_close(eps, -math.sqrt(gam * (1 - gam)) * score, rtol=1e-9, atol=1e-12)


def test_mixture_data_prediction_at_time_zero_is_the_mean():
    mix = GaussianMixture.ring(4)
    model = ExactMixtureModel(mix, ContinuousSchedule())
    x0 = model.data_prediction(torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    assert_close(x0, mix.mean.expand(3, 2), atol=1e-12)


def test_categorical_posterior_matches_brute_force_bayes():
    joint = CategoricalJoint.random(3, 2, concentration=0.5, seed=3)
    sch = DiscreteSchedule(3, beta_1=2.0)
    model = ExactCategoricalModel(joint)
    g = torch.Generator().manual_seed(1)
    t = torch.full((5,), 0.6, dtype=torch.float64)
    z = sch.sample_z(joint.sample(5, g), t, g, dtype=torch.float64)
    beta, k = float(sch.beta(0.6)), 3
    logits = model(torch.softmax(z, -1), t)
    for b in range(5):
        post = torch.zeros(3, 3, dtype=torch.float64)
        for a in range(3):
            for c in range(3):
                mean = torch.stack(
                    [
                        beta * (k * torch.nn.functional.one_hot(torch.tensor(v), k).double() - 1)
                        for v in (a, c)
                    ]
                )
                loglik = -((z[b] - mean) ** 2).sum() / (2 * k * beta)  # full Gaussian likelihood
                post[a, c] = joint.probs[a, c] * torch.exp(loglik)
        post /= post.sum()
        assert_close(logits[b].exp(), torch.stack([post.sum(1), post.sum(0)]), rtol=1e-9, atol=1e-12)


def test_categorical_joint_helpers():
    joint = CategoricalJoint.random(4, 3, seed=0)
    assert joint.states.shape == (64, 3)
    assert_close(joint.marginals().sum(-1), torch.ones(3))
    x = joint.sample(50000, torch.Generator().manual_seed(0))
    assert joint.total_variation(x) < 0.03
    single = CategoricalJoint(torch.tensor([0.2, 0.8], dtype=torch.float64))
    assert_close(single.marginals(), torch.tensor([[0.2, 0.8]]))
