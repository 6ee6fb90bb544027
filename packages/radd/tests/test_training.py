"""Training: a short run beats the unigram baseline; resume is exact; data helpers; tokenizers."""

from __future__ import annotations

import random

import pytest
import radd
import torch
from radd.data import TokenData, unigram_cross_entropy, unigram_entropy
from radd.model import RADD, RADDConfig
from radd.tokenizers import CHAR_TOKENIZER_FILE, CharTokenizerAdapter, load_tokenizer
from radd.training import train_radd

from gen_common.text import CharTokenizer
from gen_common.training import TrainConfig


def _word_text(n: int = 4000, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = ["diffusion", "mask", "token", "score", "entropy", "cache"]
    return " ".join(rng.choice(words) for _ in range(n))


def _setup(length: int = 16):
    text = _word_text()
    tok = CharTokenizerAdapter.from_corpus(text)
    data = TokenData.from_ids(tok.encode(text), length)
    torch.manual_seed(0)
    cfg = RADDConfig(
        vocab_size=tok.vocab_size, max_length=length, hidden_size=32, num_layers=1, num_heads=2, dropout=0.0
    )
    return tok, data, RADD(cfg)


def test_short_training_run_beats_the_unigram_baseline():
    tok, data, model = _setup()
    val = data.val_windows(32)
    baseline = data.unigram_baseline(val, tok.vocab_size)
    before = float(radd.estimate_nll(model, val, 8, "k", torch.Generator().manual_seed(0)).mean()) / 16
    res = train_radd(
        model,
        data.batch_fn(32),
        TrainConfig(steps=100, lr=1e-2, warmup_steps=5, log_every=20),
        loss="lambda_dce",
        device="cpu",
        progress=False,
    )
    after = float(radd.estimate_nll(model, val, 16, "k", torch.Generator().manual_seed(0)).mean()) / 16
    assert before > baseline  # an untrained model predicts uniformly: log V > unigram entropy
    assert after < baseline - 0.2, (after, baseline)
    assert res.history[-1]["loss"] < res.history[0]["loss"]


@pytest.mark.parametrize("loss", ["t_dce", "k_dce", "t_dse"])
def test_every_loss_trains(loss):
    _tok, data, model = _setup()
    res = train_radd(
        model,
        data.batch_fn(16),
        TrainConfig(steps=8, lr=1e-2, log_every=4),
        loss=loss,
        device="cpu",
        progress=False,
    )
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in res.history)


def test_resume_is_exact(tmp_path):
    cfg = TrainConfig(steps=6, lr=1e-2, log_every=2, ema_decay=0.9)
    _, data, a = _setup()
    train_radd(a, data.batch_fn(8), cfg, device="cpu", progress=False)
    _, data, b = _setup()
    train_radd(b, data.batch_fn(8), cfg, out_dir=tmp_path, device="cpu", progress=False, stop_after=3)
    _, data, b = _setup()
    res = train_radd(b, data.batch_fn(8), cfg, out_dir=tmp_path, device="cpu", progress=False)
    assert res.resumed_from == 3
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_data_helpers():
    ids = torch.tensor([0, 0, 1, 1])
    assert unigram_entropy(ids, 3) == pytest.approx(0.6931, abs=1e-4)
    assert unigram_cross_entropy(ids, ids, 3) > unigram_entropy(ids, 3)  # smoothing costs a little
    data = TokenData.from_ids(torch.arange(1000) % 7, 10, val_fraction=0.1)
    v = data.val_windows(3)  # 10 windows in the 100 validation tokens; 3 spread evenly: starts 0, 30, 60
    for row, start in zip(v, (0, 30, 60)):
        assert torch.equal(row, data.val[start : start + 10])
    assert data.val_windows().shape == (10, 10)
    with pytest.raises(ValueError, match="too short"):
        TokenData.from_ids(torch.arange(20), 10)


def test_char_tokenizer_folder_round_trip(tmp_path):
    tok = load_tokenizer("char")
    text = "Absorbing diffusion."
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode([tok.vocab_size]) == "_"  # the mask id decodes to a placeholder
    tok.save(tmp_path)
    assert (tmp_path / CHAR_TOKENIZER_FILE).is_file()
    again = load_tokenizer(tmp_path)
    assert torch.equal(again.encode(text), tok.encode(text))
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        load_tokenizer(tmp_path / "..")
    plain = CharTokenizer.load(tmp_path / CHAR_TOKENIZER_FILE)  # the file alone, without the adapter
    assert type(plain) is CharTokenizer
    assert plain.alphabet == tok.tok.alphabet
    assert torch.equal(plain.encode(text), tok.encode(text))


def test_hf_tokenizer_from_a_local_folder(tmp_path):
    pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[UNK]", "masked", "diffusion", "models", "text"])}
    core = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    core.decoder = tokenizers.decoders.WordPiece()  # joins with spaces
    PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]").save_pretrained(tmp_path)
    tok = load_tokenizer(tmp_path)
    assert tok.vocab_size == 5
    ids = tok.encode("masked diffusion models")
    assert ids.tolist() == [1, 2, 3]
    assert "[MASK]" in tok.decode([1, 5, 3])
    with pytest.raises(FileNotFoundError, match="not found"):
        load_tokenizer(tmp_path / "missing")
