"""Every registered sampler: contract, NFE accounting, the paper's identities, convergence to the toy law."""

import math

import pytest
import torch
from bfn_solver import continuous as C
from bfn_solver.sampling import (
    CONTINUOUS_METHODS,
    DISCRETE_METHODS,
    moment_matched_init,
    sample_continuous,
    sample_discrete,
)
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
from bfn_solver.toy import CategoricalJoint, ExactCategoricalModel, ExactMixtureModel, GaussianMixture

from gen_common.bench import NFECounter
from gen_common.testing import assert_close

SCH = ContinuousSchedule()
GAUSS = GaussianMixture.gaussian(0.3, 0.4, 2)
JOINT = CategoricalJoint.random(4, 2, concentration=0.3, seed=0)
DSCH = DiscreteSchedule(4, beta_1=3.0)


@pytest.mark.parametrize("method", list(CONTINUOUS_METHODS))
def test_continuous_contract_and_nfe(method):
    counter = NFECounter(ExactMixtureModel(GAUSS, SCH))
    info = CONTINUOUS_METHODS[method]
    for final in ("prediction", "denoise", "state"):
        counter.reset()
        out = sample_continuous(counter, (8, 2), 6, method, torch.Generator().manual_seed(0), final=final)
        assert out.samples.shape == (8, 2)
        assert out.samples.dtype == torch.float32
        assert out.nfe == counter.calls == info.nfe(6, final)
        assert torch.isfinite(out.samples).all()


@pytest.mark.parametrize("method", list(CONTINUOUS_METHODS))
def test_continuous_methods_converge_to_the_gaussian(method):
    """At many steps every method's output has the data's mean and std (4000 samples, ~4σ tolerance). The
    Bayesian-update samplers converge slowly (first order with a large constant), hence more steps."""
    steps = 800 if method in ("bfn", "sde_solver++1") else 200
    g = torch.Generator().manual_seed(1)
    # Start from the moment-matched prior (official "optimal_mean_and_std"): from the zero-mean default the
    # probability-flow ODE keeps the η-truncation bias of the mean (tested below).
    x_init = moment_matched_init(SCH, (4000, 2), 0.01, torch.full((2,), 0.3), 0.16, g, torch.float64)
    out = sample_continuous(
        ExactMixtureModel(GAUSS, SCH),
        (4000, 2),
        steps,
        method,
        g,
        dtype=torch.float64,
        clip=None,
        x_init=None if method == "bfn" else x_init,
    )  # unbounded data: no clipping
    x = out.samples
    assert_close(x.mean(0), torch.full((2,), 0.3), atol=4 * 0.4 / math.sqrt(4000))
    assert_close(x.std(0), torch.full((2,), 0.4), atol=0.02)


def test_zero_mean_start_biases_the_ode_but_not_the_sde():
    """The official zero-mean start at η ignores γ_η E[x]; the ODE transports that error, the SDE forgets it."""
    kw = dict(dtype=torch.float64, clip=None)
    ode = sample_continuous(
        ExactMixtureModel(GAUSS, SCH), (4000, 2), 100, "solver++2", torch.Generator().manual_seed(1), **kw
    )
    sde = sample_continuous(
        ExactMixtureModel(GAUSS, SCH), (4000, 2), 100, "sde_solver++2", torch.Generator().manual_seed(1), **kw
    )
    assert float(ode.samples.mean()) < 0.3 - 0.03
    assert abs(float(sde.samples.mean()) - 0.3) < 0.02


@pytest.mark.parametrize("method", list(DISCRETE_METHODS))
def test_discrete_contract_and_nfe(method):
    counter = NFECounter(ExactCategoricalModel(JOINT))
    info = DISCRETE_METHODS[method]
    for final in ("prediction", "denoise", "state"):
        counter.reset()
        out = sample_discrete(
            counter, (8, 2), 4, 6, method, torch.Generator().manual_seed(0), schedule=DSCH, final=final
        )
        assert out.samples.shape == (8, 2)
        assert out.samples.dtype == torch.long
        assert out.probs.shape == (8, 2, 4)
        assert out.nfe == counter.calls == info.nfe(6, final)


@pytest.mark.parametrize("method", list(DISCRETE_METHODS))
def test_discrete_methods_converge_to_the_joint(method):
    out = sample_discrete(
        ExactCategoricalModel(JOINT),
        (4000, 2),
        4,
        100,
        method,
        torch.Generator().manual_seed(2),
        schedule=DSCH,
    )
    assert JOINT.total_variation(out.samples) < 0.06  # Monte Carlo floor ≈ 0.02 at 4000 samples


def test_bfn_update_is_the_first_order_sde_solver():
    """Proposition 4.2, exactly: the Bayesian update of the BFN sampler equals the first-order data-prediction
    SDE step (σ_t/σ_s)e^{−h} μ + α_t(1 − e^{−2h}) x̂ + σ_t sqrt(1 − e^{−2h}) z on any s < t."""
    g = torch.Generator().manual_seed(0)
    x, x0, z = (torch.randn(5, 3, generator=g, dtype=torch.float64) for _ in range(3))
    for s, t in [(0.01, 0.02), (0.2, 0.7), (0.9, 1.0)]:
        a = C.bfn_update(SCH, x, x0, s, t, None, z)
        b = C.sde_solver_pp1_update(SCH, x, x0, s, t, None, z)
        assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_discrete_bfn_is_sde_solver1_with_sampled_predictions():
    """The original discrete sampler (Bayesian update of θ) = SDE-Solver1 on z with ê replaced by a one-hot
    sample, on the same grid from t = 0 and the same random numbers."""
    model = ExactCategoricalModel(JOINT)
    kw = dict(schedule=DSCH, final="denoise", dtype=torch.float64)
    a = sample_discrete(model, (64, 2), 4, 12, "bfn", torch.Generator().manual_seed(3), **kw)
    b = sample_discrete(
        model,
        (64, 2),
        4,
        12,
        "sde_solver1",
        torch.Generator().manual_seed(3),
        eta=0.0,
        sample_prediction=True,
        **kw,
    )
    assert_close(a.probs, b.probs, rtol=1e-8, atol=1e-10)
    assert torch.equal(a.samples, b.samples)


def test_solver1_and_solver_pp1_coincide():
    """First order, the noise- and data-prediction exponential integrators are the same map (DDIM)."""
    model = ExactMixtureModel(GaussianMixture.ring(), SCH)
    kw = dict(dtype=torch.float64, clip=None)
    a = sample_continuous(model, (32, 2), 7, "solver1", torch.Generator().manual_seed(0), **kw).samples
    b = sample_continuous(model, (32, 2), 7, "solver++1", torch.Generator().manual_seed(0), **kw).samples
    assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_model_receives_batch_times_in_its_dtype():
    seen = []

    def model(mu, t):
        seen.append((mu.dtype, t.shape, t.dtype, float(t[0])))
        return torch.zeros_like(mu)

    sample_continuous(model, (3, 2), 2, "solver++2", model_dtype=torch.bfloat16, eta=0.5)
    assert seen[0] == (torch.bfloat16, (3,), torch.bfloat16, 0.5)


def test_float32_state_tracks_float64():
    model = ExactMixtureModel(GaussianMixture.ring(), SCH)
    x_init = float(SCH.sigma(0.01)) * torch.randn(
        64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    a = sample_continuous(model, (64, 2), 10, "solver++2", x_init=x_init, dtype=torch.float32)
    b = sample_continuous(model, (64, 2), 10, "solver++2", x_init=x_init, dtype=torch.float64)
    assert_close(a.samples, b.samples, atol=1e-4)


def test_errors_are_readable():
    model = ExactMixtureModel(GAUSS, SCH)
    with pytest.raises(ValueError, match="unknown continuous method"):
        sample_continuous(model, (2, 2), 3, "nope")
    with pytest.raises(ValueError, match="eta > 0"):
        sample_continuous(model, (2, 2), 3, "solver++2", eta=0.0)
    with pytest.raises(ValueError, match="uniform grid"):
        sample_continuous(model, (2, 2), 3, "bfn", spacing="logsnr")
    with pytest.raises(ValueError, match="noise prediction"):
        sample_continuous(lambda mu, t: mu[:, :1], (2, 2), 3, "solver1")
    with pytest.raises(ValueError, match="class logits"):
        sample_discrete(lambda th, t: th[..., :2], (2, 2), 4, 3, "solver1", schedule=DSCH)
    with pytest.raises(FloatingPointError, match="non-finite"):
        sample_continuous(lambda mu, t: torch.full_like(mu, float("nan")), (2, 2), 3, "solver++2", clip=None)
    with pytest.raises(ValueError, match="K=3"):
        sample_discrete(ExactCategoricalModel(JOINT), (2, 2), 4, 3, schedule=DiscreteSchedule(3))
