"""The head only where the sampler reads it: samples identical to the old (N, L, V)-buffer sampler (kept in
benchmarks/head_only.py as the baseline), the model's ``positions=`` head, and semi-autoregressive blocks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import radd
import torch
from radd.sampling import scores_at

_spec = importlib.util.spec_from_file_location(
    "head_only_bench", Path(__file__).parents[1] / "benchmarks" / "head_only.py"
)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

VARIANTS = [
    {},
    {"method": "euler"},
    {"schedule": "geometric"},
    {"remasking": "confidence"},
    {"remasking": "confidence", "temperature": 0.0},
    {"top_k": 3},
    {"top_p": 0.7, "temperature": 0.8},
    {"temperature": 0.0},
    {"prefix": [1, 2, 3], "suffix": [4, 5]},
]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def tiny_radd() -> radd.RADD:
    torch.manual_seed(0)
    m = radd.RADD(radd.RADDConfig(vocab_size=11, max_length=24, hidden_size=16, num_layers=2, num_heads=2))
    torch.nn.init.normal_(m.head.weight, std=0.5)  # RADD zero-initialises the head: uniform, uninformative
    return m.eval()


@pytest.mark.parametrize("cache", [True, False])
@pytest.mark.parametrize("kwargs", VARIANTS)
def test_samples_identical_to_the_full_buffer_sampler(fake_model, tiny_radd, kwargs, cache):
    for model, n, length in ((fake_model, 24, 32), (tiny_radd, 6, 24)):
        old = bench.sample_full_buffer(model, n, length, 16, cache=cache, generator=_gen(3), **kwargs)
        new = radd.sample(model, n, length, 16, cache=cache, generator=_gen(3), **kwargs)
        assert torch.equal(old, new.tokens), (type(model).__name__, kwargs)
        assert bool((new.tokens < radd.sampling.resolve_mask_id(model)).all())


def test_ordered_sampler_unchanged_by_the_head_only_path(tiny_radd):
    """The ordered sampler through `scores_at` (head at one position) = through the full head (plain callable)."""

    def plain(x):
        return tiny_radd(x)

    plain.mask_id = tiny_radd.mask_id
    a = radd.sample_ordered(tiny_radd, 4, 24, generator=_gen(1))
    b = radd.sample_ordered(plain, 4, 24, generator=_gen(1))
    assert torch.equal(a.tokens, b.tokens)


def test_model_positions_equal_the_full_head(tiny_radd):
    x = torch.randint(0, 12, (3, 24), generator=_gen(0))
    sel = torch.rand(3, 24, generator=_gen(1)) < 0.3
    full = tiny_radd(x)
    part = tiny_radd(x, positions=sel)
    assert part.shape == (int(sel.sum()), 11)
    torch.testing.assert_close(part, full[sel], rtol=1e-6, atol=1e-6)
    assert torch.equal(scores_at(tiny_radd, x, sel, 11), part)
    with pytest.raises(ValueError, match="bool mask"):
        tiny_radd(x, positions=sel.long())


class _HeadCounter:
    """Counts the head rows the sampler asks for, and records which positions were revealed at each step."""

    supports_positions = True

    def __init__(self, model):
        self.model, self.mask_id, self.head_rows = model, model.mask_id, 0

    def __call__(self, x, positions=None):
        self.head_rows += int(positions.sum())
        return self.model(x, positions=positions)


def test_head_rows_are_the_revealed_tokens(tiny_radd):
    """Random remasking asks for exactly one head row per revealed token (N·L in all), not N·L per call."""
    m = _HeadCounter(tiny_radd)
    out = radd.sample(m, 5, 24, 12, generator=_gen(2))
    assert m.head_rows == 5 * 24
    assert out.nfe > 1


@pytest.mark.parametrize("remasking", ["random", "confidence"])
def test_blocks_fill_left_to_right(fake_model, remasking):
    """Semi-autoregressive blocks: no token of block b+1 is revealed before block b is complete."""
    history = []

    def watching(x, positions=None):
        history.append(x.clone())
        return fake_model(x)

    watching.mask_id = 7
    n, length, block = 6, 32, 8
    out = radd.sample(watching, n, length, 16, block_length=block, remasking=remasking, generator=_gen(4))
    assert bool((out.tokens < 7).all())
    for x in history:
        done = (x != 7).view(x.shape[0], length // block, block)
        started = done.any(dim=2)
        complete = done.all(dim=2)
        for b in range(length // block - 1):
            assert bool((~started[:, b + 1] | complete[:, b]).all())
    # each block is denoised in its own steps: the model saw every block partly filled at some point
    assert len(history) >= length // block
    a = radd.sample(fake_model, n, length, 16, block_length=length, generator=_gen(4), remasking=remasking)
    b = radd.sample(fake_model, n, length, 16, generator=_gen(4), remasking=remasking)
    assert torch.equal(a.tokens, b.tokens)  # one block is the plain sampler


def test_block_arguments_are_checked(fake_model):
    with pytest.raises(ValueError, match="block_length must divide"):
        radd.sample(fake_model, 2, 32, 16, block_length=5)
    with pytest.raises(ValueError, match="multiple of the number of blocks"):
        radd.sample(fake_model, 2, 32, 10, block_length=8)
