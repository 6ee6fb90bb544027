"""Shared fixtures: a cheap deterministic masked model whose output depends on every input token (so a stale
cache entry would change the samples), and small exact toys."""

from __future__ import annotations

import pytest
import radd
import torch


class FakeMaskedModel:
    """logits = tanh(E[x] + P + mean over positions) @ W: cheap, deterministic, row-independent."""

    def __init__(self, vocab_size: int = 7, length: int = 32, dim: int = 8, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.mask_id = vocab_size
        self.emb = torch.randn(vocab_size + 1, dim, generator=g)
        self.pos = torch.randn(length, dim, generator=g)
        self.out = torch.randn(dim, vocab_size, generator=g) * 2.0
        self.rows = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        h = self.emb[x] + self.pos[: x.shape[1]]
        h = h + h.mean(dim=1, keepdim=True)
        return torch.tanh(h) @ self.out


@pytest.fixture
def fake_model() -> FakeMaskedModel:
    return FakeMaskedModel()


@pytest.fixture(scope="session")
def toy_56() -> radd.ExactToy:
    """V=5, L=6: the size of the reference notes' enumeration check."""
    return radd.ExactToy.random(5, 6, torch.Generator().manual_seed(0))


@pytest.fixture(scope="session")
def toy_small() -> radd.ExactToy:
    """V=3, L=4: cheap enough for many Monte Carlo draws."""
    return radd.ExactToy.random(3, 4, torch.Generator().manual_seed(1))


@pytest.fixture(scope="session")
def tiny_gpt2_tokenizer(tmp_path_factory):
    """A GPT-2-style byte-level BPE tokenizer (with <|endoftext|>) trained offline on a few sentences, saved to a
    folder as `transformers` writes it."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    text = [
        "The quick brown fox jumps over the lazy dog. It's a test, isn't it?",
        'Valkyria Chronicles III is a tactical role-playing game; 1,000 players (and more) said "yes".',
    ] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(text, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"])
    folder = tmp_path_factory.mktemp("tok")
    tok = GPT2TokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    tok.save_pretrained(folder)
    return folder
