"""The tiny CLIPs: right shapes, features equal the manual projection of the tower outputs, seeded, offline."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("open_clip")

from gen_common.testing import clip_tiny


@pytest.fixture(scope="module")
def model():
    return clip_tiny.tiny_clip_model(seed=0)


@pytest.fixture(scope="module")
def processor():
    return clip_tiny.tiny_clip_processor()


def _images(n=2, seed=0):
    return torch.rand(n, 3, 40, 48, generator=torch.Generator().manual_seed(seed))


def test_features_have_the_right_shapes_and_equal_the_manual_projection(model, processor):
    inp = processor(
        text=["a cat", "a dog on a mat"],
        images=list(_images()),
        return_tensors="pt",
        padding=True,
        do_rescale=False,
    )
    assert inp["pixel_values"].shape == (2, 3, 32, 32)
    with torch.no_grad():
        img, txt = clip_tiny.clip_features(
            model, inp["pixel_values"], inp["input_ids"], inp["attention_mask"]
        )
        only_img = clip_tiny.clip_features(model, pixel_values=inp["pixel_values"])
        vis = model.vision_model(pixel_values=inp["pixel_values"]).pooler_output
        # the text tower pools at the end-of-text token (the highest id, 49407) of each row
        hidden = model.text_model(
            input_ids=inp["input_ids"], attention_mask=inp["attention_mask"]
        ).last_hidden_state
        eot = (inp["input_ids"] == 49407).int().argmax(-1)
        pooled = hidden[torch.arange(2), eot]
    assert img.shape == (2, 16) and txt.shape == (2, 16)
    torch.testing.assert_close(img, vis @ model.visual_projection.weight.T, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(txt, pooled @ model.text_projection.weight.T, rtol=1e-5, atol=1e-6)
    assert torch.equal(only_img, img)
    with pytest.raises(ValueError, match="pixel_values"):
        clip_tiny.clip_features(model)


def test_clip_model_is_seeded_and_projection_dim_is_honoured():
    a, b = clip_tiny.tiny_clip_model(seed=1), clip_tiny.tiny_clip_model(seed=1, projection_dim=8)
    assert b.visual_projection.weight.shape == (8, 32)
    c = clip_tiny.tiny_clip_model(seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    d = clip_tiny.tiny_clip_model(seed=2)
    assert not torch.equal(a.visual_projection.weight, d.visual_projection.weight)


def test_open_clip_model_preprocess_and_tokenizer_work_offline():
    from PIL import Image

    model, preprocess, tokenizer = clip_tiny.tiny_open_clip_model(seed=0)
    pil = Image.fromarray((_images(1)[0].permute(1, 2, 0).numpy() * 255).astype("uint8"))
    x = preprocess(pil)[None]
    assert x.shape == (1, 3, 32, 32)
    tokens = tokenizer(["a photo of a cat"])
    assert tokens.shape == (1, 77) and tokens[0, 0] == 49406
    with torch.no_grad():
        img, txt = model.encode_image(x), model.encode_text(tokens)
        img2 = clip_tiny.tiny_open_clip_model(seed=0)[0].encode_image(x)
    assert img.shape == (1, 16) and txt.shape == (1, 16)
    assert torch.equal(img, img2)
