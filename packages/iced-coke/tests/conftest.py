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
    """Tiny SDXL base and an img2img refiner sharing its modules (exact base -> refiner hand-off)."""
    from gen_common.testing.sdxl_tiny import tiny_sdxl_img2img_pipeline, tiny_sdxl_pipeline

    base = tiny_sdxl_pipeline(seed=0)
    return base, tiny_sdxl_img2img_pipeline(from_base=base)


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
    """A tiny open_clip CLIP (32-px images) and its bundled BPE tokenizer."""
    from gen_common.testing.clip_tiny import tiny_open_clip_model

    model, _, tokenizer = tiny_open_clip_model(seed)
    return model, tokenizer


def tiny_hf_clip(seed: int = 0):
    """A tiny transformers CLIPModel (32-px images) and CLIP's tokenizer."""
    from gen_common.testing.clip_tiny import tiny_clip_model
    from gen_common.testing.diffusers_tiny import clip_tokenizer

    return tiny_clip_model(seed), clip_tokenizer()


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
