"""Where packages meet: images written by iced-coke's `sample` command are scored by the shared metrics
(gen_common.metrics) and probed by genprobe's classifier command, all through the public entry points."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("iced_coke")
pytest.importorskip("genprobe")
pytest.importorskip("torchmetrics")

from gen_common.metrics import clip_score, fid
from gen_common.testing.clip_tiny import clip_features, tiny_clip_model, tiny_clip_processor

PROMPT = "A tea cup of iced coke."


def _sample(out: Path, seed: int, n: int, capsys) -> list[Path]:
    from iced_coke.cli import main

    argv = ["sample", "--prompt", PROMPT, "--first-prompt", "tea cup", "--steps", "3", "--switch-step", "1"]
    code = main(
        [*argv, "--num-images", str(n), "--seed", str(seed), "--device", "cpu", "--out", str(out), "--json"]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    files = [Path(f) for f in report["files"]]
    assert len(files) == n and all(f.parent == out and f.suffix == ".png" for f in files)
    return files


def _load(files: list[Path]) -> torch.Tensor:
    from PIL import Image

    arr = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()  # uint8 (N, 3, H, W)


def test_sampled_images_are_scored_and_probed(tmp_path, capsys):
    a = _sample(tmp_path / "a", 0, 24, capsys)
    b = _sample(tmp_path / "b", 100, 24, capsys)
    xa, xb = _load(a), _load(b)
    assert xa.dtype == torch.uint8 and xa.shape[1] == 3 and xa.shape == xb.shape
    assert not torch.equal(xa, xb)  # different seeds, different images

    # Shared metrics on the written files: FID with a (user-supplied) tiny feature extractor ...
    torch.manual_seed(0)
    extractor = torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 8)
    ).eval()
    to_float = lambda x: x.float() / 255  # noqa: E731
    assert fid(to_float(xa), to_float(xa), extractor) == pytest.approx(0.0, abs=1e-6)
    d_ab = fid(to_float(xa), to_float(xb), extractor)
    assert d_ab > 0 and np.isfinite(d_ab)
    # ... and CLIPScore with a CLIP model equals the cosine of its own features (100 · max(cos, 0)).
    model, processor = tiny_clip_model(seed=0), tiny_clip_processor()
    per_image = clip_score(xa[:4], [PROMPT] * 4, model, processor, reduction="none")
    inputs = processor(
        text=[PROMPT] * 4, images=list(xa[:4].permute(0, 2, 3, 1).numpy()), return_tensors="pt", padding=True
    )
    with torch.no_grad():
        fi = clip_features(model, pixel_values=inputs["pixel_values"])
        ft = clip_features(model, input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    cos = torch.nn.functional.cosine_similarity(fi, ft, dim=-1)
    assert per_image.tolist() == pytest.approx((100 * cos.clamp(min=0)).tolist(), abs=1e-4)

    # genprobe's classifier command on the two folders: one distribution, so the accuracy's 95% interval holds
    # chance, and the split is flagged as too small to mean much.
    from genprobe.cli import main as genprobe

    argv = [
        "train",
        f"--source=seed0={tmp_path / 'a'}",
        f"--source=seed100={tmp_path / 'b'}",
        "--steps",
        "20",
    ]
    argv += ["--eval-every", "10", "--width", "8", "--batch-size", "16", "--device", "cpu", "--json"]
    code = genprobe([*argv, "--out", str(tmp_path / "probe")])
    cap = capsys.readouterr()
    res = json.loads(cap.out)
    assert code == 0, res
    lo, hi = res["accuracy_ci95"]
    assert lo <= 0.5 <= hi
    assert any("test images per class" in w for w in res["warnings"])
    assert "genprobe: warning: only" in cap.err
    assert (tmp_path / "probe" / "metrics.json").is_file()
