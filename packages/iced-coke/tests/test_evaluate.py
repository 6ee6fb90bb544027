"""Evaluation: per-pair scores per method, success rate at a threshold, a contact sheet per pair; Attend-and-Excite
through diffusers' pipeline on the concepts' tokens."""

from __future__ import annotations

import json

import numpy as np
import pytest
from iced_coke.baselines import concept_token_indices, engineered_prompt
from iced_coke.evaluation import contact_sheet, evaluate_methods
from iced_coke.pairs import ConceptPair
from iced_coke.runs import EvaluateRun, evaluate
from PIL import Image

from gen_common.cli import RunContext

PAIR = ConceptPair("A tea cup of iced coke.", "tea cup", "a cup", "iced coke", "dark drink")


class ConstScorer:
    def __init__(self, table):
        self.table = table

    def score_pair(self, images, pair):
        return self.table[images[0].getpixel((0, 0))[0]]


def test_success_rate_and_sheet(tmp_path):
    red, blue = Image.new("RGB", (8, 8), (200, 0, 0)), Image.new("RGB", (8, 8), (10, 0, 200))
    scorer = ConstScorer({200: (0.8, 0.75), 10: (0.9, 0.6)})
    rep = evaluate_methods(
        [PAIR, PAIR], {"good": lambda p: [red], "bad": lambda p: [blue]}, scorer, 0.72, sheets=tmp_path
    )
    assert rep.success_rate() == {"good": 1.0, "bad": 0.0}
    assert rep.mean_scores()["bad"] == pytest.approx((0.9, 0.6))
    sheet = Image.open(tmp_path / f"{PAIR.slug}.png")
    assert sheet.size[0] >= 128 and np.asarray(sheet).std() > 0
    j = rep.to_json()
    assert len(j["rows"]) == 4 and j["threshold"] == 0.72


def test_contact_sheet_rows(tmp_path):
    ims = [Image.new("RGB", (4, 4), (i * 60, 0, 0)) for i in range(3)]
    p = contact_sheet({"a": ims, "b": ims[:1]}, tmp_path / "s.png", title="t", cell=16)
    im = np.asarray(Image.open(p))
    assert im.shape == (16 + 2 * (16 + 14), 240, 3)
    assert tuple(im[16 + 14 + 8, 16 * 2 + 8]) == (120, 0, 0)


def test_baseline_prompts_and_tokens(sd_pipe):
    assert engineered_prompt(PAIR) == "first tea cup, and second A tea cup of iced coke."
    assert engineered_prompt(PAIR, "first") == "tea cup"
    idx = concept_token_indices(sd_pipe.tokenizer, PAIR)
    toks = sd_pipe.tokenizer.convert_ids_to_tokens(sd_pipe.tokenizer(PAIR.prompt).input_ids)
    assert [toks[i] for i in idx] == ["tea</w>", "cup</w>", "iced</w>", "coke</w>"]


@pytest.mark.filterwarnings("ignore:torch.meshgrid")
def test_evaluate_run_with_attend_and_excite(tmp_path, hf_clip_scorer):
    clip_dir = tmp_path / "clip"
    hf_clip_scorer.backend.model.save_pretrained(clip_dir)
    hf_clip_scorer.backend.tokenizer.save_pretrained(clip_dir)
    pairs = tmp_path / "prompt.json"
    pairs.write_text(json.dumps({"prompt0": PAIR.to_dict()}))
    run = EvaluateRun(
        pairs=pairs, methods="plain,moce,aae", steps=3, switch_step=1, num_images=1, clip=str(clip_dir)
    )
    rep = evaluate(run, RunContext(device="cpu", out=tmp_path / "out"))
    assert set(rep.success_rate) == {"plain", "moce", "aae"}
    assert all(0.0 <= v <= 1.0 for v in rep.success_rate.values())
    saved = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert [r["method"] for r in saved["rows"]] == ["plain", "moce", "aae"]
    assert (tmp_path / "out" / f"{PAIR.slug}.png").is_file()
