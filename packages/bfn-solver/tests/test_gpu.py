"""GPU paths (skipped without CUDA): bf16 network calls with float32 state and float64 coefficients give the
CPU samples up to bf16 rounding; the same seed gives the same noise on any device."""

import pytest
import torch
from bfn_solver.checkpoints import BFNImageConfig, BFNImageModel
from bfn_solver.sampling import sample_continuous, sample_discrete
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
from bfn_solver.toy import CategoricalJoint, ExactCategoricalModel, ExactMixtureModel, GaussianMixture


@pytest.mark.gpu
def test_toy_sampling_on_cuda_matches_cpu():
    model = ExactMixtureModel(GaussianMixture.ring(), ContinuousSchedule())
    a = sample_continuous(model, (256, 2), 10, "sde_solver++2", torch.Generator().manual_seed(0))
    b = sample_continuous(
        model, (256, 2), 10, "sde_solver++2", torch.Generator().manual_seed(0), device="cuda"
    )
    assert torch.allclose(a.samples, b.samples.cpu(), atol=1e-4)
    joint = CategoricalJoint.random(4, 2)
    c = sample_discrete(
        ExactCategoricalModel(joint),
        (256, 2),
        4,
        10,
        "bfn",
        torch.Generator().manual_seed(0),
        schedule=DiscreteSchedule(4, 3.0),
    )
    d = sample_discrete(
        ExactCategoricalModel(joint),
        (256, 2),
        4,
        10,
        "bfn",
        torch.Generator().manual_seed(0),
        schedule=DiscreteSchedule(4, 3.0),
        device="cuda",
    )
    assert (c.samples == d.samples.cpu()).float().mean() > 0.98


@pytest.mark.gpu
def test_bf16_network_calls():
    torch.manual_seed(0)
    net = (
        BFNImageModel(BFNImageConfig(embedding_dim=32, n_blocks=2, norm_groups=8, image_size=8)).cuda().eval()
    )
    kw = dict(schedule=net.schedule, device="cuda")
    a = sample_continuous(net, (4, 8, 8, 3), 5, "solver++2", torch.Generator().manual_seed(0), **kw)
    b = sample_continuous(
        net,
        (4, 8, 8, 3),
        5,
        "solver++2",
        torch.Generator().manual_seed(0),
        model_dtype=torch.bfloat16,
        **kw.copy(),
    )
    assert a.samples.dtype == b.samples.dtype == torch.float32
    assert (a.samples - b.samples).abs().max() < 0.1
