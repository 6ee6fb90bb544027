"""The tiny chat LM: offline tokenizer with a chat template, deterministic greedy generation, save round trip."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from gen_common.testing import lm_tiny  # noqa: E402

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say héllo 👋"},
]


@pytest.fixture(scope="module")
def lm():
    return lm_tiny.tiny_causal_lm(seed=0)


def _prompt_ids(tokenizer):
    out = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_tensors="pt")
    return (
        out if isinstance(out, torch.Tensor) else out["input_ids"]
    )  # transformers 5 returns a BatchEncoding


def test_chat_template_renders_the_messages(lm):
    _, tok = lm
    text = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nSay héllo 👋<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    ids = _prompt_ids(tok)
    assert tok.decode(ids[0]) == text, "byte-level BPE: every string round-trips"
    assert (ids[0] == tok.convert_tokens_to_ids("<|im_start|>")).sum() == 3
    assert tok.unk_token_id is None


def test_greedy_generation_is_deterministic(lm):
    model, tok = lm
    ids = _prompt_ids(tok)
    a = model.generate(ids, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    b = model.generate(ids, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert a.shape == (1, ids.shape[1] + 8)
    assert torch.equal(a, b)
    assert torch.equal(a[:, : ids.shape[1]], ids)
    # greedy: each new token is the argmax of the logits given everything before it
    with torch.no_grad():
        logits = model(a[:, :-1]).logits[0, ids.shape[1] - 1 :]
    assert torch.equal(logits.argmax(-1), a[0, ids.shape[1] :])


def test_save_pretrained_round_trip(lm, tmp_path):
    model, tok = lm
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    model2 = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, local_files_only=True)
    tok2 = transformers.AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert tok2.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False) == (
        tok.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    )
    ids = _prompt_ids(tok2)
    assert torch.equal(ids, _prompt_ids(tok))
    with torch.no_grad():
        assert torch.equal(model2(ids).logits, model(ids).logits)
    assert (tok2.eos_token, tok2.pad_token) == ("<|im_end|>", "<|endoftext|>")
