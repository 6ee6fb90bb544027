"""Import the released search (utils/score.py, utils/generate.py) from a fetched checkout of
RossoneriZhao/iced_coke for side-by-side tests. Its CLIP module needs OpenAI's `clip` package, so a stub stands in
for utils/clipscore.py (the search never calls it). Skips when no checkout is present."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
