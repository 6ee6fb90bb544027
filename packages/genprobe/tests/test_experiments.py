"""The experiment drivers: tables, matrices, nested scaling, robustness, and the files they write."""

import csv
import dataclasses
import json

import pytest
import torch
from genprobe.data import ImageSource, SplitConfig
from genprobe.experiments import (
    confusion_report,
    data_scaling,
    edges,
    frequency_sweep,
    is_chance,
    multiclass,
    pairwise,
    robustness,
)
from genprobe.probe import ProbeConfig
from genprobe.toy import ToyConfig, toy_pair

TINY = ProbeConfig(steps=20, eval_every=10, batch_size=32, width=8, lr=3e-3, patience=None)
SPLIT = SplitConfig(test_per_class=30, val_per_class=10)


@pytest.fixture(scope="module")
def three():
    a, b = toy_pair("hf", 100, ToyConfig(size=16), seed=5)
    c = toy_pair("lf", 100, ToyConfig(size=16), seed=6)[1]
    return [a, b, c]


def test_pairwise_matrix_is_symmetric_with_an_empty_diagonal_and_writes_files(three, tmp_path):
    rep = pairwise(three, TINY, SPLIT, device="cpu")
    m = rep.data["matrix"]
    assert len(rep.rows) == 3
    for i in range(3):
        assert m[i][i] is None
        for j in range(3):
            if i != j:
                assert m[i][j] == m[j][i]
                assert 0 <= m[i][j] <= 1
    files = rep.write(tmp_path)
    assert {f.suffix for f in files} == {".json", ".csv", ".png"}
    assert json.loads((tmp_path / "pairwise.json").read_text())["columns"][:3] == ["a", "b", "accuracy"]
    with open(tmp_path / "pairwise.csv", newline="") as fh:
        assert len(list(csv.reader(fh))) == 4


def test_multiclass_confusion_counts_every_test_image(three):
    rep = multiclass(three, TINY, SPLIT, device="cpu")
    counts = [row[1:4] for row in rep.rows]
    assert [sum(r) for r in counts] == [30, 30, 30]
    assert rep.data["accuracy"] == pytest.approx(sum(counts[i][i] for i in range(3)) / 90)


def test_frequency_sweep_on_the_high_frequency_toy_gives_the_known_accuracies(tmp_path):
    """The hf pair's sources differ only at r >= 6 cycles per 16 px image (identical below 4). Raw and high-pass
    classifiers must be near-perfect; after a low-pass at R = 2 or 5 the two sources have exactly the same
    distribution, so the accuracy must be at chance within the binomial noise of the 200 test images."""
    toy = ToyConfig(size=16)
    pair = toy_pair("hf", 300, toy, seed=5)
    cfg = ProbeConfig(steps=150, eval_every=50, batch_size=32, width=8, lr=3e-3, patience=2)
    split = SplitConfig(test_per_class=100, val_per_class=40)
    sweep = frequency_sweep(pair, [toy.r_low / 2, toy.cutoff], cfg, split, device="cpu", progress=False)
    assert [r[0] for r in sweep.rows] == [2.0, 5.0]
    assert [r["filter"] for r in sweep.runs] == ["none", "lowpass:2", "highpass:2", "lowpass:5", "highpass:5"]
    assert {r["n"] for r in sweep.runs} == {200}
    assert sweep.data["raw_accuracy"] >= 0.95, sweep.rows
    for cutoff, low, high in sweep.rows:
        assert is_chance(low, 200), (cutoff, low)
        assert high >= 0.95, (cutoff, high)
    assert sweep.data["hlines"] == {"chance": 0.5, "unfiltered": sweep.data["raw_accuracy"]}
    sweep.write(tmp_path)
    assert (tmp_path / "frequency_sweep.png").stat().st_size > 1000
    with open(tmp_path / "frequency_sweep.csv", newline="") as fh:
        assert [float(v) for v in list(csv.reader(fh))[1]] == pytest.approx(sweep.rows[0])


def test_scaling_edges_and_robustness_tables(three):
    pair = three[:2]
    scale = data_scaling(pair, [5, 40], TINY, SPLIT, device="cpu")
    assert [r[0] for r in scale.rows] == [5, 40]
    assert [r["train_per_class"] for r in scale.runs] == [5, 40]
    # The classifiers really saw 5 and 40 images per class, and all were tested on the same 30 per class.
    assert [r["train_images"] for r in scale.runs] == [10, 40 * 2]
    assert [r["n"] for r in scale.runs] == [60, 60]
    ed = edges(pair, ("sobel",), TINY, SPLIT, device="cpu")
    assert ed.rows[0][0] == "sobel"


def test_robustness_a_resize_that_removes_the_only_difference_gives_chance(three):
    """The hf pair differs only at r >= 6 cycles per 16 px image. Halving the resolution keeps r <= 4 (up to the
    antialiasing filter's leakage), so a classifier trained on raw images that is near-perfect on clean test images
    must fall to about chance under resize:0.5, while a mild JPEG keeps most of its accuracy."""
    pair = three[:2]
    with pytest.raises(ValueError, match="JPEG quality"):
        robustness(pair, ("none", "jpeg:500"), TINY, SPLIT, device="cpu")  # refused before training
    cfg = dataclasses.replace(TINY, steps=60)
    rob = robustness(pair, ("none", "jpeg:95", "resize:0.5"), cfg, SPLIT, device="cpu")
    acc = {r[0]: r[1] for r in rob.rows}
    assert list(acc) == ["none", "jpeg:95", "resize:0.5"]
    assert acc["none"] >= 0.9, acc
    assert acc["jpeg:95"] >= 0.8, acc
    assert is_chance(acc["resize:0.5"], 60), acc


def test_confusion_report_counts_and_normalises():
    from genprobe.metrics import compute_metrics

    labels = torch.tensor([0, 0, 0, 1, 1])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 0, 1, 1]), 2).float()
    rep = confusion_report(compute_metrics(labels, logits, ["real", "fake"]), "t")
    assert rep.columns == ["true", "pred:real", "pred:fake", "class_accuracy"]
    assert [r[:3] for r in rep.rows] == [["real", 2, 1], ["fake", 0, 2]]
    assert rep.data["matrix"] == [[pytest.approx(2 / 3), pytest.approx(1 / 3)], [0.0, 1.0]]


def test_sources_of_different_sizes_are_refused():
    a = ImageSource.from_tensor(torch.rand(20, 1, 8, 8), "a")
    b = ImageSource.from_tensor(torch.rand(20, 1, 16, 16), "b")
    with pytest.raises(ValueError, match="different image shapes"):
        pairwise([a, b], TINY, SplitConfig(test_per_class=5))
