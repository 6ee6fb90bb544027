from __future__ import annotations

import pytest
import torch
from longalign import SegmentEncoder, split_default, split_official


def plain_rows(tokenizer, text_encoder, text):
    tok = tokenizer([text], max_length=77, padding="max_length", truncation=True, return_tensors="pt")
    with torch.no_grad():
        return text_encoder(tok.input_ids)[0][0], tok.input_ids[0]


def test_official_splitter_quirks():
    # the pattern's quotes are literal: "!" and ";" alone do not split, '"!' does
    assert split_official("A cat! A dog; a bird.") == ["A cat! A dog; a bird."]
    assert split_official('Say "!hi') == ["Say .", "hi."]
    assert split_official("One. Two? Three") == ["One.", " Two.", " Three."]
    # a whitespace-only piece becomes its own segment (" ." tokenises to a lone ".")
    assert split_official("A. . B.") == ["A.", " .", " B."]
    assert split_official("") == [""]
    assert split_official("...") == ["..."]  # no non-empty piece: the text itself


def test_default_splitter():
    assert split_default("A cat sat. It was 3.5 m tall! Why? Because; yes") == [
        "A cat sat.",
        "It was 3.5 m tall!",
        "Why?",
        "Because;",
        "yes.",
    ]
    assert split_default("") == [""]
    assert split_default("  .  ") == [""]
    assert split_default("No terminator") == ["No terminator."]


@pytest.mark.parametrize("splitter", ["default", "official"])
def test_single_sentence_equals_plain_clip_then_pad(tokenizer, text_encoder, splitter):
    enc = SegmentEncoder(tokenizer, text_encoder, max_length=240, splitter=splitter)
    text = "A red fox jumps over the lazy dog."
    out = enc([text])
    plain, ids = plain_rows(tokenizer, text_encoder, text)
    n = int((ids != tokenizer.eos_token_id).sum())  # <sot> + the tokens, no <eot>/<pad>
    assert out.embeds.shape == (1, 240, 32)
    assert int(out.lengths[0]) == n
    torch.testing.assert_close(out.embeds[0, :n], plain[:n], atol=1e-5, rtol=0)
    # the pad vector: mean of the last 60 rows of "" padded to 77
    empty, _ = plain_rows(tokenizer, text_encoder, "")
    pad = empty[-60:].mean(0)
    torch.testing.assert_close(out.embeds[0, n:], pad.expand(240 - n, -1), atol=1e-6, rtol=0)


def test_k_sentences_rows_are_each_alone(tokenizer, text_encoder):
    enc = SegmentEncoder(tokenizer, text_encoder, max_length=240)
    sents = ["A small house.", "The roof is bright red and very steep.", "Two cats sleep."]
    out = enc([" ".join(sents)])
    offs = 0
    for s in sents:
        plain, ids = plain_rows(tokenizer, text_encoder, s)
        n = int((ids != tokenizer.eos_token_id).sum())
        torch.testing.assert_close(out.embeds[0, offs : offs + n], plain[:n], atol=1e-5, rtol=0)
        offs += n
    assert int(out.lengths[0]) == offs  # Σ(nᵢ + 1) with nᵢ text tokens and one <sot> each


def test_batch_matches_one_by_one_and_negative_empty(tokenizer, text_encoder):
    enc = SegmentEncoder(tokenizer, text_encoder, max_length=96)
    prompts = ["A tree. A very long sentence about many leaves and branches in the wind.", "", "Sky."]
    batch = enc(prompts)
    for i, p in enumerate(prompts):
        alone = enc([p])
        torch.testing.assert_close(batch.embeds[i], alone.embeds[0], atol=1e-5, rtol=0)
        assert int(batch.lengths[i]) == int(alone.lengths[0])
    assert int(batch.lengths[1]) == 1  # "" keeps only its <sot> row
    assert batch.mask.sum(1).tolist() == batch.lengths.tolist()


def test_one_encoder_call_per_batch(tokenizer, text_encoder):
    calls = []
    handle = text_encoder.register_forward_hook(lambda m, a, o: calls.append(a[0].shape))
    try:
        enc = SegmentEncoder(tokenizer, text_encoder)
        enc.pad_vector()
        calls.clear()
        enc(["One. Two. Three.", "Four. Five."])
    finally:
        handle.remove()
    assert len(calls) == 1 and calls[0][0] == 5


def test_manual_tokenisation_matches_tokenizer(tokenizer, text_encoder):
    enc = SegmentEncoder(tokenizer, text_encoder, warn_truncation=False)
    texts = ["short.", "word " * 100, "a b c."]
    ids, cut = enc._tokenize(texts)
    ref = tokenizer(texts, max_length=77, padding=True, truncation=True, return_tensors="pt").input_ids
    assert torch.equal(ids, ref) and cut == [texts[1]]


def test_truncation_warns_with_rows(tokenizer, text_encoder):
    enc = SegmentEncoder(tokenizer, text_encoder, max_length=12)
    with pytest.warns(UserWarning, match=r"max_length=12 rows: \d+ row\(s\) cut"):
        out = enc(["One two three four five. Six seven eight nine ten. Eleven twelve thirteen fourteen."])
    assert int(out.lengths[0]) == 12 and out.truncated[0] > 0
    enc.max_length = 240
    with pytest.warns(UserWarning, match="77-token window"):
        enc(["word " * 100])


def test_bad_arguments(tokenizer, text_encoder):
    with pytest.raises(ValueError, match="unknown splitter"):
        SegmentEncoder(tokenizer, text_encoder, splitter="nltk")
    enc = SegmentEncoder(tokenizer, text_encoder)
    with pytest.raises(ValueError, match="no prompts"):
        enc([])


def test_long_prompt_pipeline_feeds_the_stock_pipeline(sd_pipe):
    from diffusers import UniPCMultistepScheduler
    from longalign import LongPromptPipeline

    pipe = LongPromptPipeline.from_pipe(sd_pipe, max_length=120)
    old = sd_pipe.scheduler
    sd_pipe.scheduler = UniPCMultistepScheduler.from_config(old.config)
    try:
        prompt = " ".join(["A red boat on a lake."] * 15)  # 92 tokens, 105 rows
        kw = {"num_inference_steps": 3, "output_type": "pt"}
        img = pipe(prompt, generator=torch.Generator().manual_seed(0), **kw).images
        enc = SegmentEncoder.from_pipe(sd_pipe, max_length=120)
        ref = sd_pipe(
            prompt_embeds=enc([prompt]).embeds,
            negative_prompt_embeds=enc([""]).embeds,
            generator=torch.Generator().manual_seed(0),
            **kw,
        ).images
        torch.testing.assert_close(img, ref, atol=1e-5, rtol=0)  # prompt and "" share one encoder call
        with pytest.raises(ValueError, match="negative prompts"):
            pipe([prompt, prompt], negative_prompt=["", "", ""])
    finally:
        sd_pipe.scheduler = old


def _official_caption2embed():
    """The release's ``tools.caption2embed`` (with its ``pattern``), taken from the fetched checkout's source; the
    file's own imports (wandb, datasets, torchvision) are not needed by these two definitions and are skipped."""
    import ast
    import re
    import subprocess

    from .test_lora import OFFICIAL

    if not (OFFICIAL / "HEAD").exists() and not (OFFICIAL / ".git").exists():
        pytest.skip("official LongAlign checkout not found")
    src = subprocess.run(
        ["git", "--git-dir", str(OFFICIAL), "show", "HEAD:tools.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tree = ast.parse(src)
    keep = [
        n
        for n in tree.body
        if (isinstance(n, ast.FunctionDef) and n.name == "caption2embed")
        or (
            isinstance(n, ast.Assign)
            and any(getattr(t, "id", "") in ("pattern", "pad_embed") for t in n.targets)
        )
    ]
    ns = {"re": re, "torch": torch}
    exec(compile(ast.Module(body=keep, type_ignores=[]), "official_tools.py", "exec"), ns)
    return ns["caption2embed"]


def test_official_splitter_matches_the_release_caption2embed(tokenizer, text_encoder):
    """Side by side with the release's own encoder: same rows, same pad vector, same truncation, batch of prompts
    with quirky punctuation, an empty prompt and one longer than max_length."""
    from types import SimpleNamespace

    caption2embed = _official_caption2embed()
    prompts = [
        "A red house on a hill. Two cats sleep? A dog; a bird! Blue sky.",
        "",
        "One small boat.",
        " ".join(["A quiet harbour at dawn with red roofs."] * 6),  # > 40 rows: cut
    ]
    args = SimpleNamespace(token_length=40)
    with torch.no_grad():
        ref = caption2embed(prompts, [tokenizer, None], [text_encoder, None], args, "cpu", torch.float32)
    ref = ref["encoder_hidden_states_clip_concat"]
    enc = SegmentEncoder(tokenizer, text_encoder, max_length=40, splitter="official", warn_truncation=False)
    torch.testing.assert_close(enc(prompts).embeds, ref, atol=1e-5, rtol=1e-5)
