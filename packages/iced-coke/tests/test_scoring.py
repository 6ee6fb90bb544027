"""CLIPScore as the paper computes it: 2.5·max(cos, 0), the "A photo depicts" prefix, S = max over concept and
description; both backends on tiny offline CLIPs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from iced_coke.pairs import ConceptPair
from iced_coke.scoring import CLIPScore, clip_preprocess, clipscore_per_image
from PIL import Image

PAIR = ConceptPair(
    "A tea cup of iced coke.", "tea cup", "Small ceramic vessel.", "iced coke", "Dark liquid with ice."
)


def images(n: int = 3, size: tuple[int, int] = (40, 32)) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(n)]


def test_clipscore_formula_closed_form():
    img = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
    txt = torch.tensor([[3.0, 3.0]])
    got = clipscore_per_image(img, txt)
    c = 1 / np.sqrt(2)
    assert torch.allclose(
        got, torch.tensor([2.5 * c, 2.5 * c, 0.0], dtype=torch.float64)
    )  # negative cos clipped


def test_preprocess_resizes_short_side_and_centre_crops():
    im = Image.new("RGB", (64, 32))
    im.paste((255, 0, 0), (0, 0, 16, 32))  # a red band on the left, cropped away by the centre crop
    x = clip_preprocess([im], 16)
    assert x.shape == (1, 3, 16, 16)
    black = (torch.zeros(3) - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor(
        [0.26862954, 0.26130258, 0.27577711]
    )
    assert torch.allclose(x[0, :, 8, 8], black, atol=1e-6)


class FixedBackend:
    """Closed-form features: every image is e1; captions map to chosen directions."""

    image_size = 8

    def __init__(self, table):
        self.table, self.seen = table, []

    def encode_images(self, pixels):
        return torch.tensor([[1.0, 0.0]]).repeat(pixels.shape[0], 1)

    def encode_texts(self, texts):
        self.seen.extend(texts)
        return torch.tensor([self.table[t.removeprefix("A photo depicts ")] for t in texts])


def test_pair_score_is_max_over_concept_and_description_with_prefix():
    table = {"tea cup": [1.0, 1.0], "Small ceramic vessel.": [1.0, 0.0], "iced coke": [0.0, 1.0],
             "Dark liquid with ice.": [-1.0, 1.0]}  # fmt: skip
    b = FixedBackend(table)
    s1, s2 = CLIPScore(b).score_pair(images(2), PAIR)
    assert s1 == pytest.approx(2.5) and s2 == pytest.approx(0.0)
    assert all(t.startswith("A photo depicts ") for t in b.seen)


@pytest.mark.parametrize("fixture", ["open_clip_scorer", "hf_clip_scorer"])
def test_backends_score_real_tiny_clips(request, fixture):
    scorer = request.getfixturevalue(fixture)
    ims = images(3)
    s1, s2 = scorer.score_pair(ims, PAIR)
    assert 0.0 <= s1 <= 2.5 and 0.0 <= s2 <= 2.5
    # the pair score is the max of the per-text means, each the mean of per-image CLIPScores
    per = scorer.scores(ims, [PAIR.first_prompt, PAIR.first_describe])
    assert s1 == pytest.approx(float(per.max()))
    img = scorer.image_features(ims)
    txt = scorer.backend.encode_texts(["A photo depicts " + PAIR.first_prompt])
    assert float(per[0]) == pytest.approx(float(clipscore_per_image(img, txt).mean()), rel=1e-5)
    assert scorer.score_pair(ims, PAIR) == (s1, s2)  # deterministic


def test_batching_does_not_change_scores(open_clip_scorer):
    ims = images(5)
    a = open_clip_scorer.scores(ims, ["tea cup"])
    b = CLIPScore(open_clip_scorer.backend, batch_size=2).scores(ims, ["tea cup"])
    assert torch.allclose(a, b, atol=1e-6)
