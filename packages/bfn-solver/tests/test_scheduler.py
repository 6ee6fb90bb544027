"""The diffusers-style stepper drives the same update rules as the samplers: identical samples."""

import pytest
import torch
from bfn_solver.sampling import CONTINUOUS_METHODS, DISCRETE_METHODS, sample_continuous, sample_discrete
from bfn_solver.scheduler import BFNSolverScheduler
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
from bfn_solver.toy import CategoricalJoint, ExactCategoricalModel, ExactMixtureModel, GaussianMixture

from gen_common.testing import assert_close

ONE_CALL_CONT = [m for m, i in CONTINUOUS_METHODS.items() if i.evals_per_step == 1 and not i.extra_calls]
ONE_CALL_DISC = [m for m, i in DISCRETE_METHODS.items() if i.evals_per_step == 1]


def test_methods_with_a_second_call_are_refused():
    with pytest.raises(ValueError, match="sample_continuous"):
        BFNSolverScheduler("continuous", "solver++3")


@pytest.mark.parametrize("method", ONE_CALL_CONT)
def test_continuous_loop_equals_sample_continuous(method):
    model = ExactMixtureModel(GaussianMixture.ring(), ContinuousSchedule())
    sched = BFNSolverScheduler("continuous", method)
    sched.set_timesteps(6)
    g = torch.Generator().manual_seed(0)
    x = sched.initial_sample((16, 2), g, dtype=torch.float64)
    for t in sched.timesteps:
        tb = torch.full((16,), float(t), dtype=torch.float64)
        eps = torch.zeros_like(x) if float(t) < 1e-6 else model(sched.scale_model_input(x, t), tb)
        x = sched.step(eps, t, x, generator=g).prev_sample
    ref = sample_continuous(
        model, (16, 2), 6, method, torch.Generator().manual_seed(0), dtype=torch.float64, final="prediction"
    )
    assert_close(x, ref.samples, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ONE_CALL_DISC)
def test_discrete_loop_equals_sample_discrete(method):
    joint = CategoricalJoint.random(4, 2, seed=0)
    model, sch = ExactCategoricalModel(joint), DiscreteSchedule(4, 3.0)
    sched = BFNSolverScheduler("discrete", method, num_classes=4, beta_1=3.0, final="prediction")
    sched.set_timesteps(5)
    g = torch.Generator().manual_seed(1)
    z = sched.initial_sample((16, 2), g, dtype=torch.float64)
    for t in sched.timesteps:
        logits = model(sched.scale_model_input(z, t), torch.full((16,), float(t), dtype=torch.float64))
        z = sched.step(logits, t, z, generator=g).prev_sample
    final = "denoise" if method == "bfn" else "prediction"
    if (
        method == "bfn"
    ):  # the official sampler ends with one more call at t = 1; the loop leaves it to the user
        sched = BFNSolverScheduler("discrete", "bfn", num_classes=4, beta_1=3.0, final="state")
        sched.set_timesteps(5)
        g = torch.Generator().manual_seed(1)
        z = sched.initial_sample((16, 2), g, dtype=torch.float64)
        for t in sched.timesteps:
            logits = model(sched.scale_model_input(z, t), torch.full((16,), float(t), dtype=torch.float64))
            z = sched.step(logits, t, z, generator=g).prev_sample
        z = model(torch.softmax(z, -1), torch.ones(16, dtype=torch.float64))
    ref = sample_discrete(
        model,
        (16, 2),
        4,
        5,
        method,
        torch.Generator().manual_seed(1),
        schedule=sch,
        dtype=torch.float64,
        final=final,
    )
    assert_close(torch.softmax(z, -1), ref.probs, rtol=1e-9, atol=1e-12)


def test_scheduler_guards():
    with pytest.raises(ValueError, match="calls the network more than once"):
        BFNSolverScheduler("continuous", "solver2")
    with pytest.raises(ValueError, match="num_classes"):
        BFNSolverScheduler("discrete", "solver1")
    s = BFNSolverScheduler("continuous", "solver++2")
    with pytest.raises(ValueError, match="set_timesteps"):
        s.step(torch.zeros(1, 2), 0.01, torch.zeros(1, 2))
    s.set_timesteps(2)
    with pytest.raises(ValueError, match="next grid time"):
        s.step(torch.zeros(1, 2), 0.7, torch.zeros(1, 2))
    noised = s.add_noise(torch.ones(3, 2), torch.zeros(3, 2), torch.full((3,), 1.0))
    assert_close(noised, torch.full((3, 2), float(ContinuousSchedule().gamma(1.0))))


def test_diffusers_flavour_round_trips_its_config(tmp_path):
    pytest.importorskip("diffusers")
    from bfn_solver.diffusers_scheduler import BFNSolverDiffusersScheduler

    s = BFNSolverDiffusersScheduler(algorithm="sde_solver++2", spacing="logsnr")
    s.save_config(tmp_path)
    t = BFNSolverDiffusersScheduler.from_pretrained(tmp_path)
    assert t.config.algorithm == "sde_solver++2"
    assert t.config.spacing == "logsnr"
    t.set_timesteps(4)
    assert len(t.timesteps) == 4
    assert t.order == 2
