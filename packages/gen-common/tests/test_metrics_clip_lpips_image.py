"""CLIPScore, LPIPS, PSNR and SSIM against manual computations, torchmetrics and closed forms."""

from __future__ import annotations

import sys

import pytest
import torch

pytest.importorskip("torchmetrics")
pytest.importorskip("transformers")
pytest.importorskip("open_clip")

from gen_common.metrics import clip_features, clip_score, load_lpips, lpips, psnr, ssim
from gen_common.testing.clip_tiny import tiny_clip_model, tiny_clip_processor

TEXTS = ["a cat", "a red square on a mat", "noise"]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def clip():
    return tiny_clip_model(seed=0), tiny_clip_processor()


@pytest.fixture(scope="module")
def images():
    return torch.randint(0, 256, (3, 3, 40, 40), generator=_gen(), dtype=torch.uint8)


def test_clip_score_equals_a_manual_cosine(clip, images):
    model, proc = clip
    scores = clip_score(images, TEXTS, model, proc, reduction="none", batch_size=2)
    pixels = proc(images=list(images), return_tensors="pt")["pixel_values"]
    tok = proc(text=TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        e_i, e_t = clip_features(model, pixels, tok["input_ids"], tok["attention_mask"])
    cos = torch.nn.functional.cosine_similarity(e_i, e_t, dim=-1)
    torch.testing.assert_close(scores, 100 * cos.clamp(min=0), rtol=1e-5, atol=1e-4)
    assert (cos > 0).any(), "the tiny model must give some positive cosines for the test to mean anything"
    torch.testing.assert_close(
        clip_score(images, TEXTS, model, proc, scale=2.5), 2.5 * cos.clamp(min=0).mean(), rtol=1e-5, atol=1e-5
    )
    # without a processor: CLIP's standard preprocessing and tokenizer, i.e. what tiny_clip_processor() is
    torch.testing.assert_close(clip_score(images, TEXTS, model, reduction="none"), scores)
    # float images in [0, 1] are the same pictures as uint8 ones (no second 1/255 rescale); at the model's own
    # size, so the processor's resampling (PIL for uint8, numpy for floats) does not enter
    small = images[..., :32, :32]
    as_float = clip_score(small.float() / 255, TEXTS, model, proc, reduction="none")
    as_uint8 = clip_score(small, TEXTS, model, proc, reduction="none")
    torch.testing.assert_close(as_float, as_uint8, rtol=1e-4, atol=1e-3)


def test_clip_score_matches_torchmetrics_given_tensor_features(clip, images):
    """torchmetrics 1.9 normalises ``get_*_features`` directly (a tensor under transformers 4); a shim returning
    tensors lets it run under transformers 5, and its max(mean(100·cos), 0) is our clamp="mean"."""
    from torchmetrics.functional.multimodal import clip_score as tm_clip_score

    model, proc = clip

    class TensorFeatures(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.config = model, model.config

        def get_image_features(self, *a, **k):
            return clip_features(model, *a, **k)

        def get_text_features(self, input_ids, attention_mask=None):
            return clip_features(model, input_ids=input_ids, attention_mask=attention_mask)

    with torch.no_grad():
        theirs = tm_clip_score(list(images), TEXTS, lambda: (TensorFeatures(), proc))
    ours = clip_score(images, TEXTS, model, proc, clamp="mean")
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-4)


def test_clip_score_input_errors(clip, images):
    model, proc = clip
    for bad, match in [
        ((images, TEXTS[:2]), "captions"),
        ((images[0], TEXTS[:1]), "images"),
        ((torch.full((1, 3, 8, 8), float("nan")), TEXTS[:1]), "NaN"),
        ((images.float(), TEXTS), r"\[0, 1\]"),
    ]:
        with pytest.raises(ValueError, match=match):
            clip_score(*bad, model, proc)


@pytest.fixture(scope="module")
def alexnet_weights(tmp_path_factory):
    """A random torchvision AlexNet state dict in safetensors (stands in for the ImageNet weights a user has)."""
    torchvision = pytest.importorskip("torchvision")
    from safetensors.torch import save_file

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        # the convolutional part only: building AlexNet's 55M-parameter classifier would cost seconds here
        state = {
            f"features.{k}": v
            for k, v in torchvision.models.alexnet(weights=None).features.state_dict().items()
        }
    path = tmp_path_factory.mktemp("lpips") / "alexnet.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def test_lpips_of_an_image_with_itself_is_zero_and_positive_otherwise(alexnet_weights):
    pytest.importorskip("lpips")
    model = load_lpips(alexnet_weights)
    x = torch.rand(2, 3, 64, 64, generator=_gen(0))
    y = torch.rand(2, 3, 64, 64, generator=_gen(1))
    assert torch.equal(lpips(x, x, model), torch.zeros(2))
    d = lpips(x, y, model)
    assert d.shape == (2,) and (d > 0).all()
    assert lpips(x, y, model, reduction="mean") == pytest.approx(float(d.mean()))
    # the torchvision weights really are in the backbone (not left random)
    from safetensors.torch import load_file

    assert torch.equal(model.net.slice1[0].weight, load_file(str(alexnet_weights))["features.0.weight"])


def test_lpips_without_or_with_wrong_weights_is_a_clear_error(tmp_path):
    pytest.importorskip("lpips")
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="backbone_weights"):
        lpips(x, x)
    from safetensors.torch import save_file

    save_file({"features.0.weight": torch.zeros(3, 3, 3, 3)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="lack"):
        load_lpips(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="differ in shape"):
        lpips(x, x[:, :, :32], backbone_weights=tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lpips(x * 2 - 1, x, backbone_weights=tmp_path / "bad.safetensors")


def test_psnr_is_the_closed_form_and_ssim_of_identical_images_is_one():
    x = torch.rand(3, 3, 16, 16, generator=_gen(0))
    noise = 0.05 * torch.randn(3, 3, 16, 16, generator=_gen(1))
    y = (x + noise).clamp(0, 1)
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(psnr(y, x, reduction="none"), 10 * torch.log10(1 / mse), rtol=1e-5, atol=1e-4)
    assert float(psnr(y, x)) == pytest.approx(float((10 * torch.log10(1 / mse)).mean()), rel=1e-5)
    torch.testing.assert_close(ssim(x, x, reduction="none"), torch.ones(3))
    assert 0 < float(ssim(y, x)) < 1
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(x, x[:2])


def test_missing_lpips_names_the_extra(monkeypatch, alexnet_weights):
    monkeypatch.setitem(sys.modules, "lpips", None)
    with pytest.raises(ImportError, match=r'pip install "gen-common\[metrics\]"'):
        load_lpips(alexnet_weights)
