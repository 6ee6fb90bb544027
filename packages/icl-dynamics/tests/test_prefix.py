import pytest
import torch
from icl_dynamics.prefix import PrefixGram, blocked_apply, direct_apply, embed, last_gram, prefix_gram


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    e = torch.randn(4, 11, 6, dtype=torch.complex128, generator=g)
    z = torch.randn(4, 11, 6, dtype=torch.complex128, generator=g)
    return e, z


def test_embedding_stacks_current_and_previous_token():
    x = torch.arange(1, 7, dtype=torch.float64).reshape(1, 3, 2).to(torch.complex128)
    e = embed(x)
    assert torch.equal(e[0, 0], torch.tensor([1, 2, 0, 0], dtype=torch.complex128))  # x_0 = 0
    assert torch.equal(e[0, 2], torch.tensor([5, 6, 3, 4], dtype=torch.complex128))


def test_prefix_gram_is_the_running_sum_of_outer_products(batch):
    e, _ = batch
    S = prefix_gram(e)
    t = 6
    expected = sum(e[:, i, :, None] * e[:, i, None, :].conj() for i in range(t + 1))
    torch.testing.assert_close(S[:, t], expected)
    torch.testing.assert_close(S[:, t], S[:, t].mH)  # Hermitian
    torch.testing.assert_close(last_gram(e, t + 1), S[:, t])


@pytest.mark.parametrize("block", [1, 2, 3, 4, 16])
def test_all_strategies_agree(batch, block):
    e, z = batch
    ref = direct_apply(e, z)
    torch.testing.assert_close(PrefixGram(e, "cumsum").apply(z), ref)
    torch.testing.assert_close(blocked_apply(e, z, block), ref)


def test_auto_strategy_respects_the_cache_budget(batch):
    e, z = batch
    assert PrefixGram(e).strategy == "cumsum"
    small = PrefixGram(e, cache_bytes=1)
    assert small.strategy == "blocked"
    assert small.gram is None
    torch.testing.assert_close(small.apply(z), direct_apply(e, z))


def test_direct_strategy_slices_large_batches(batch, monkeypatch):
    e, z = batch
    big_e, big_z = (
        e.repeat(300, 1, 1),
        z.repeat(300, 1, 1),
    )  # 1200 sequences: more than one slice of T² scores
    torch.testing.assert_close(PrefixGram(big_e, "direct").apply(big_z)[-4:], direct_apply(e, z))


def test_errors(batch):
    e, z = batch
    with pytest.raises(ValueError, match="unknown prefix strategy"):
        PrefixGram(e, "fft")
    with pytest.raises(ValueError, match="shape"):
        PrefixGram(e).apply(z[:, :5])
