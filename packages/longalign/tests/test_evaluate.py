"""`longalign evaluate`: alignment scores agree with `score`, FID goes through the user's extractor and weights."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch
from longalign.cli import main

EXTRACTOR = """
import torch


def build():
    return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 6))
"""


def run_json(capsys, *argv):
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture
def extractor(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    (tmp_path / "tiny_feats_la.py").write_text(EXTRACTOR)
    monkeypatch.syspath_prepend(str(tmp_path))
    # imported by name: it lives in tmp_path, not in any distribution
    tiny_feats = importlib.import_module("tiny_feats_la")
    torch.manual_seed(3)
    module = tiny_feats.build()
    save_file(module.state_dict(), tmp_path / "feats.safetensors")
    return module.eval(), tmp_path / "feats.safetensors"


def test_evaluate_scores_fid_and_sheet(capsys, tmp_path, extractor):
    from gen_common.metrics import FeatureStats, extract_features, frechet_distance

    module, weights = extractor
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(
        "A red house. A blue door.\nTwo cats on a sofa. One is black.\nA boat. The sea is calm.\n"
    )
    common = ["--prompts", str(prompts), "--steps", "2", "--scheduler", "ddim"]
    code, a = run_json(capsys, "evaluate", *common, "--out", str(tmp_path / "a"))
    assert code == 0 and a["prompts"] == 3 and "fid" not in a
    assert (tmp_path / "a" / "contact_sheet.png").is_file() and (tmp_path / "a" / "evaluation.json").is_file()
    al = a["alignment"]["tiny"]
    assert al["mean_score"] == pytest.approx(al["mean_relevant"] + 0.3 * al["mean_irrelevant"], abs=1e-6)
    assert al["mean_plain"] == pytest.approx(al["mean_relevant"] + al["mean_irrelevant"], abs=1e-6)
    # the same numbers as scoring the written images with `score` (same crop seed)
    code, sc = run_json(capsys, "score", str(tmp_path / "a" / "images"), str(prompts))
    assert code == 0
    assert al["per_prompt"] == pytest.approx([r["score"] for r in sc["per_image"]], abs=1e-5)

    # FID against the images of the first run (same seed, same pipeline): zero
    fid_args = ["--fid-extractor", "tiny_feats_la:build", "--fid-weights", str(weights)]
    ref_dir = str(tmp_path / "a" / "images")
    code, b = run_json(
        capsys, "evaluate", *common, *fid_args, "--fid-reference", ref_dir, "--out", str(tmp_path / "b")
    )
    assert code == 0 and abs(b["fid"]) < 1e-6
    # against a .npz: exactly the Fréchet distance of the loaded extractor's features
    ref = FeatureStats.from_features(np.random.default_rng(0).normal(size=(10, 6)))
    ref.save_stats(tmp_path / "ref.npz")
    code, c = run_json(
        capsys,
        "evaluate",
        *common,
        *fid_args,
        "--fid-reference",
        str(tmp_path / "ref.npz"),
        "--out",
        str(tmp_path / "c"),
    )
    from longalign.runs import _load_images

    feats = extract_features(_load_images(tmp_path / "a" / "images")[1], module)
    mine = FeatureStats.from_features(feats)
    assert code == 0 and c["fid"] == pytest.approx(
        frechet_distance(mine.mu, mine.sigma, ref.mu, ref.sigma), rel=1e-6
    )
    assert c["fid"] > 1.0  # the weights were loaded: a random-feature reference is far away


def test_evaluate_user_errors_exit_2(capsys, tmp_path, extractor):
    from safetensors.torch import save_file

    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    assert main(["evaluate", "--prompts", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds no prompts" in err and len(err.splitlines()) == 1
    prompts = tmp_path / "p.txt"
    prompts.write_text("A cat.\nA dog.\n")
    save_file({"1.weight": torch.zeros(6, 5), "1.bias": torch.zeros(6)}, tmp_path / "bad.safetensors")
    argv = ["evaluate", "--prompts", str(prompts), "--steps", "1", "--fid-extractor", "tiny_feats_la:build"]
    argv += ["--out", str(tmp_path / "o")]
    assert (
        main([*argv, "--fid-weights", str(tmp_path / "bad.safetensors"), "--fid-reference", str(tmp_path)])
        == 2
    )
    assert "does not fit the extractor" in capsys.readouterr().err
    assert main(argv) == 2
    assert "both --fid-extractor and --fid-reference" in capsys.readouterr().err
    bad_mod = ["--fid-extractor", "no_such_mod:x", "--fid-reference", "r", "--out", str(tmp_path / "o")]
    assert main(["evaluate", "--prompts", str(prompts), *bad_mod]) == 2
    assert "cannot import the feature extractor" in capsys.readouterr().err
