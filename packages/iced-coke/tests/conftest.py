"""Shared fixtures: tiny offline pipelines, built once per session from configs under a seed."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def sd_pipe():
    from gen_common.testing.diffusers_tiny import tiny_sd_pipeline

    return tiny_sd_pipeline(seed=0)


@pytest.fixture(scope="session")
def sdxl_pair():
    from iced_coke.runs import _tiny_sdxl

    return _tiny_sdxl(0)


@pytest.fixture(scope="session")
def sdxl_pipe(sdxl_pair):
    return sdxl_pair[0]


@pytest.fixture(scope="session")
def sdxl_refiner(sdxl_pair):
    return sdxl_pair[1]


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def tiny_open_clip(seed: int = 0):
    """A tiny open_clip CLIP (32-px images) and its real BPE tokenizer, until `gen_common.testing.clip_tiny` lands."""
    import open_clip
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    from gen_common.testing.diffusers_tiny import _seeded_build

    with _seeded_build(seed):
        model = open_clip.CLIP(
            embed_dim=16,
            vision_cfg=CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=32),
            text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
        ).eval()
    return model, open_clip.get_tokenizer("ViT-B-32")


def tiny_hf_clip(seed: int = 0):
    import transformers

    from gen_common.testing.diffusers_tiny import _seeded_build, clip_tokenizer

    cfg = transformers.CLIPConfig(
        text_config={"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": 49406,
                     "eos_token_id": 49407, "pad_token_id": 49407},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )  # fmt: skip
    with _seeded_build(seed):
        model = transformers.CLIPModel(cfg).eval()
    return model, clip_tokenizer()


@pytest.fixture(scope="session")
def open_clip_scorer():
    from iced_coke.scoring import CLIPScore, OpenCLIPBackend

    return CLIPScore(OpenCLIPBackend(*tiny_open_clip()))


@pytest.fixture(scope="session")
def hf_clip_scorer():
    from iced_coke.scoring import CLIPScore, TransformersCLIPBackend

    return CLIPScore(TransformersCLIPBackend(*tiny_hf_clip()))


# --- the released search, imported from a fetched checkout of RossoneriZhao/iced_coke --------------------------

MIRROR = Path(os.environ.get("ICED_COKE_OFFICIAL", "/work/.mirror/RossoneriZhao+iced_coke/repo"))


def load_official(tmp: Path):
    if not MIRROR.exists():
        pytest.skip(f"official checkout not found at {MIRROR} (set ICED_COKE_OFFICIAL)")
    pkg = tmp / "iced_coke_official" / "utils"
    pkg.mkdir(parents=True, exist_ok=True)
    for name in ("score.py", "generate.py", "save.py"):
        text = subprocess.run(
            ["git", "-C", str(MIRROR), "show", f"HEAD:utils/{name}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (pkg / name).write_text(text)
    (pkg / "clipscore.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg.parent / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp))
    try:
        for m in [m for m in sys.modules if m.startswith("iced_coke_official")]:
            del sys.modules[m]
        score = importlib.import_module("iced_coke_official.utils.score")
        generate = importlib.import_module("iced_coke_official.utils.generate")
    finally:
        sys.path.remove(str(tmp))
    generate.log = score.log = lambda *a, **k: None
    generate.save_imgs = lambda *a, **k: None
    return score, generate


def release_search(score_mod, gen_mod, scorer, T, tau=0.72, delta=0.01, evaluator=None):
    """Run the released RunLoop.binary_search_loop with `scorer(k)` in place of image generation + CLIPScore.
    Returns (best ratio as returned, probed ks, evaluator)."""
    import math

    import torch

    ev = evaluator or score_mod.BinarySearchEvaluator(
        tau, None, 1, 1, "cpu", "clipscore", 0.025, 0.475, T, 1, 2
    )
    probed: list[int] = []
    state = {}

    def fake_generate(model, refiner, first_result, bs, n, steps, ratio, prompt, first_prompt):
        state["k"] = math.ceil(round(ratio * T, 6))
        if (
            first_result is None
        ):  # the vendored base keeps str((i+1)/T) for the steps before denoising_end = 0.5
            return [], {str((i + 1) / T): torch.zeros(1) for i in range(T // 2)}
        return [], None

    def fake_score(images, fp, fd, sp, sd, iters):
        probed.append(state["k"])
        return scorer(state["k"])

    gen_mod.single_generate = fake_generate
    ev.get_score = fake_score
    loop = gen_mod.RunLoop(
        None, None, 1, 1, T, 0.25, 1 / T, 0.45, ev, 5, "unused", False, 0.475, 0.025, "cpu", tau, delta
    )
    best = loop.binary_search_loop({"prompt": "p", "first_prompt": "a", "first_describe": "A",
                                    "second_prompt": "b", "second_describe": "B"})  # fmt: skip
    return best, probed, ev


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """(score module, generate module, release_search) of the released code; skips without a checkout."""
    score_mod, gen_mod = load_official(tmp_path_factory.mktemp("official"))
    return score_mod, gen_mod, release_search
