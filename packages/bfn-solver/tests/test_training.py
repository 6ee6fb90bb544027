"""Continuous-time losses (formula, minimiser) and the trainer (runs, learns, resumes)."""

import math

import pytest
import torch
from bfn_solver.losses import continuous_time_loss, discrete_time_loss
from bfn_solver.sampling import sample_continuous
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
from bfn_solver.toy import (
    CategoricalJoint,
    ContinuousMLP,
    ContinuousMLPConfig,
    DiscreteMLP,
    DiscreteMLPConfig,
    ExactCategoricalModel,
    ExactMixtureModel,
    GaussianMixture,
)
from bfn_solver.training import shapes_dataset, train_bfn

from gen_common.testing import assert_close
from gen_common.training import TrainConfig


def test_continuous_loss_matches_its_formula():
    sch = ContinuousSchedule(0.01)
    x = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    t = torch.tensor([0.5], dtype=torch.float64)
    eps_hat = torch.tensor([[0.1, 0.2]])
    loss = continuous_time_loss(
        lambda mu, tt: eps_hat.to(mu.dtype), x, sch, torch.Generator().manual_seed(0), t=t, clip=None
    )
    mu, _ = sch.sample_mu(x, t, torch.Generator().manual_seed(0))
    gam = float(sch.gamma(0.5))
    x0 = mu / gam - math.sqrt((1 - gam) / gam) * eps_hat.double()
    expected = -math.log(0.01) * 0.01 ** (-2 * 0.5) * (x - x0).pow(2).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_exact_denoisers_minimise_the_losses():
    g = torch.Generator().manual_seed(0)
    mix = GaussianMixture.ring()
    sch = ContinuousSchedule()
    x = mix.sample(4000, g).float()
    model = ExactMixtureModel(mix, sch)

    def loss(shift):  # the same t and noise draws for every candidate: a fair comparison
        return continuous_time_loss(
            lambda mu, t: model(mu, t) + shift, x, sch, torch.Generator().manual_seed(1)
        ).mean()

    assert loss(0.0) < loss(0.05)
    assert loss(0.0) < loss(-0.05)
    assert (
        loss(0.0)
        < continuous_time_loss(
            lambda mu, t: torch.zeros_like(mu), x, sch, torch.Generator().manual_seed(1)
        ).mean()
    )
    joint = CategoricalJoint.random(4, 2, seed=0)
    dsch = DiscreteSchedule(4, 3.0)
    ids = joint.sample(4000, g)
    exact = discrete_time_loss(
        ExactCategoricalModel(joint), ids, dsch, torch.Generator().manual_seed(2)
    ).mean()
    uniform = discrete_time_loss(
        lambda th, t: torch.zeros_like(th), ids, dsch, torch.Generator().manual_seed(2)
    ).mean()
    assert exact < 0.8 * uniform
    with pytest.raises(ValueError, match="class ids"):
        discrete_time_loss(ExactCategoricalModel(joint), ids + 4, dsch)


def test_trainer_learns_the_mixture_and_resumes(tmp_path):
    torch.manual_seed(0)
    mix = GaussianMixture.ring()
    model = ContinuousMLP(ContinuousMLPConfig(hidden=64, layers=2))
    cfg = TrainConfig(steps=300, lr=3e-3, log_every=50, seed=0)
    res = train_bfn(
        model,
        lambda n, g: mix.sample(n, g).float(),
        model.schedule,
        cfg,
        batch_size=128,
        out_dir=tmp_path,
        progress=False,
    )
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    out = sample_continuous(model, (2000, 2), 20, "solver++2", torch.Generator().manual_seed(0))
    r = out.samples.norm(dim=1)
    assert abs(float(r.mean()) - 0.6) < 0.15  # the ring, roughly, after 300 steps
    res2 = train_bfn(
        model,
        lambda n, g: mix.sample(n, g).float(),
        model.schedule,
        cfg,
        batch_size=128,
        out_dir=tmp_path,
        progress=False,
    )
    assert res2.resumed_from == 300


def test_trainer_runs_on_discrete_and_image_data(tmp_path):
    torch.manual_seed(0)
    joint = CategoricalJoint.random(4, 2, seed=0)
    dm = DiscreteMLP(DiscreteMLPConfig(hidden=32, layers=2))
    res = train_bfn(
        dm,
        lambda n, g: joint.sample(n, g),
        dm.schedule,
        TrainConfig(steps=20, log_every=10),
        batch_size=64,
        progress=False,
    )
    assert math.isfinite(res.final_loss)
    imgs = shapes_dataset(64, 8)
    assert imgs.shape == (64, 8, 8, 3)
    assert imgs.min() >= -1
    assert imgs.max() <= 1
    with pytest.raises(ValueError, match="non-empty"):
        train_bfn(dm, torch.zeros(0, 2), dm.schedule, TrainConfig(steps=1), progress=False)


def test_pretrained_round_trip(tmp_path):
    m = DiscreteMLP(DiscreteMLPConfig(hidden=16, layers=1))
    m.save_pretrained(tmp_path / "m")
    n = DiscreteMLP.from_pretrained(tmp_path / "m")
    th = torch.softmax(torch.randn(3, 2, 4), -1)
    t = torch.rand(3)
    assert_close(m(th, t), n(th, t))
