"""Prediction-type adapters, the time-broadcast adapter and the moment-matched start."""

import torch
from bfn_solver.sampling import moment_matched_init
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
from bfn_solver.toy import ExactMixtureModel, GaussianMixture
from bfn_solver.wrappers import BroadcastTime, DataPredictionModel, NoisePredictionModel

from gen_common.testing import assert_close


def test_data_and_noise_prediction_round_trip():
    mix = GaussianMixture.ring()
    sch = ContinuousSchedule()
    eps_model = ExactMixtureModel(mix, sch)
    mu = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.0, 0.05, 0.3, 0.6, 0.9, 1.0], dtype=torch.float64)
    x0 = DataPredictionModel(eps_model, sch)(mu[1:], t[1:])
    assert_close(x0, eps_model.data_prediction(mu[1:], t[1:]), rtol=1e-8, atol=1e-10)
    assert_close(
        DataPredictionModel(eps_model, sch)(mu[:1], t[:1]), torch.zeros(1, 2)
    )  # official: 0 at t = 0
    back = NoisePredictionModel(DataPredictionModel(eps_model, sch), sch)(mu[1:], t[1:])
    assert_close(back, eps_model(mu[1:], t[1:]), rtol=1e-7, atol=1e-9)


def test_broadcast_time_passes_the_data_shape():
    seen = {}

    def net(x, t):
        seen["t"] = t
        return x

    BroadcastTime(net)(torch.zeros(2, 5, 3), torch.tensor([0.1, 0.7]))
    assert seen["t"].shape == (2, 5, 3)
    assert float(seen["t"][1, 4, 2]) == float(torch.tensor(0.7))
    BroadcastTime(net, lambda x: x.shape[:2])(torch.zeros(2, 5, 3), torch.tensor([0.1, 0.7]))
    assert seen["t"].shape == (2, 5)


def test_moment_matched_init_has_the_marginal_moments():
    g = torch.Generator().manual_seed(0)
    c = ContinuousSchedule()
    x = moment_matched_init(c, (40000, 1), 0.1, torch.tensor([0.5]), 0.04, g, torch.float64)
    gam = float(c.gamma(0.1))
    assert abs(float(x.mean()) - gam * 0.5) < 0.01
    assert abs(float(x.var()) - (gam * (1 - gam) + gam**2 * 0.04)) < 0.01
    d = DiscreteSchedule(3, 2.0)
    z = moment_matched_init(d, (40000, 1), 0.5, torch.tensor([1.0, 0.0, 0.0]), 0.0, g, torch.float64)
    assert_close(z.mean((0, 1)), float(d.beta(0.5)) * (3 * torch.tensor([1.0, 0, 0]) - 1), atol=0.03)
