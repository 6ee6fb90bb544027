import pytest
import torch
from mdm_scaling.config import ModelConfig


@pytest.fixture
def tiny_config() -> ModelConfig:
    return ModelConfig(vocab_size=11, n_layer=2, n_head=4, n_embd=16, intermediate_size=24, block_size=40)


def _seeded_model(cls, config, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        m = cls(config)
    # The GPT-NeoX init makes the residual branches tiny; perturb everything so tests see a non-trivial network.
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 1)
        for p in m.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return m.eval()


@pytest.fixture
def seeded_model():
    """Build a model with a fixed seed and weights perturbed away from the (near-identity) init."""
    return _seeded_model
