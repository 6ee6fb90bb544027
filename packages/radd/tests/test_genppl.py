"""Generative perplexity under a tiny random GPT-2 built from a config (offline), against the model's own loss."""

from __future__ import annotations

import json
import math

import pytest
import torch
from radd.cli import main
from radd.genppl import generative_perplexity, load_scorer, read_samples


@pytest.fixture(scope="module")
def scorer(tiny_gpt2_tokenizer, tmp_path_factory):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(str(tiny_gpt2_tokenizer), local_files_only=True)
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_positions=64,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        n_embd=16,
        n_layer=1,
        n_head=2,
    )
    d = tmp_path_factory.mktemp("scorer")
    GPT2LMHeadModel(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_equals_the_models_own_loss(scorer):
    model, tok = load_scorer(scorer)
    text = "The quick brown fox jumps over"
    ids = tok(text)["input_ids"]
    assert 2 <= len(ids) <= 64
    r = generative_perplexity([text], model, tok)
    with torch.no_grad():
        loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss
    assert r.scored_tokens == len(ids) - 1
    assert math.isclose(r.perplexity, math.exp(float(loss)), rel_tol=1e-5)


def test_long_samples_are_chunked_and_batches_padded(scorer):
    model, tok = load_scorer(scorer)
    long = " ".join(["The quick brown fox jumps over the lazy dog."] * 8)
    short = "It's a test"
    n_long, n_short = len(tok(long)["input_ids"]), len(tok(short)["input_ids"])
    assert n_long > 128
    r = generative_perplexity([long, short], model, tok, batch_size=3)
    chunks = math.ceil(n_long / 64)
    assert r.scored_tokens == n_long - chunks + n_short - 1
    one = generative_perplexity([short], model, tok)
    assert math.isclose(r.per_sample_nll[1], one.per_sample_nll[0], rel_tol=1e-5)  # padding does not leak


def test_entropy_exposes_repetitive_samples(scorer):
    model, tok = load_scorer(scorer)
    rep = generative_perplexity(["dog dog dog dog dog dog"], model, tok)
    varied = generative_perplexity(["The quick brown fox jumps over the lazy dog"], model, tok)
    assert rep.unigram_entropy_nats < varied.unigram_entropy_nats - 0.5
    assert varied.unigram_entropy_nats > 1.5


def test_read_samples_formats(tmp_path):
    (tmp_path / "samples.txt").write_text("first one\nline two\n\n=====\n\nsecond\n")
    assert read_samples(tmp_path / "samples.txt") == ["first one\nline two", "second"]
    (tmp_path / "s.jsonl").write_text('{"text": "a"}\n{"text": "b c"}\n')
    assert read_samples(tmp_path / "s.jsonl") == ["a", "b c"]
    (tmp_path / "e.txt").write_text("\n\n")
    with pytest.raises(ValueError, match="no samples"):
        read_samples(tmp_path / "e.txt")


def test_cli_gen_ppl(scorer, tmp_path, capsys):
    (tmp_path / "samples.txt").write_text("The quick brown fox\n\n=====\n\nIt's a test, isn't it?\n")
    args = ["gen-ppl", "--samples", str(tmp_path / "samples.txt"), "--scorer", str(scorer), "--json"]
    assert main(args) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["num_samples"] == 2
    assert r["gen_perplexity"] == pytest.approx(math.exp(r["nll_nats_per_token"]))
    assert r["unigram_entropy_nats"] > 0.5
    assert main(["gen-ppl", "--samples", str(tmp_path / "samples.txt"), "--scorer", str(tmp_path)]) == 2
    assert "config.json" in capsys.readouterr().err
