"""Splits too small to mean anything warn (SmallSplitWarning), with the accuracy's interval; the CLI reports them."""

import json
import warnings

import pytest
import torch
from genprobe.cli import main
from genprobe.config import MIN_TEST_PER_CLASS, SmallSplitWarning
from genprobe.data import SplitConfig, balanced_split, split_sets
from genprobe.metrics import compute_metrics, wilson_interval
from genprobe.probe import ProbeConfig, train_probe, warn_small_test
from genprobe.toy import ToyConfig, toy_pair

TINY = ProbeConfig(steps=10, eval_every=5, batch_size=16, width=4, patience=None)


def _metrics(per_class: int, correct_per_class: int):
    labels = torch.arange(2).repeat_interleave(per_class)
    preds = labels.clone()
    for k in range(2):  # the first (per_class - correct) of each class are wrong
        preds[k * per_class : k * per_class + per_class - correct_per_class] = 1 - k
    return compute_metrics(labels, torch.nn.functional.one_hot(preds, 2).float(), ["real", "fake"])


def test_fewer_than_twenty_test_images_per_class_warns_with_the_wilson_interval():
    m = _metrics(8, 6)  # 12 of 16 right
    lo, hi = wilson_interval(12, 16)
    with pytest.warns(SmallSplitWarning) as rec:
        assert warn_small_test(m, "highpass:4") is True
    (w,) = rec
    text = str(w.message)
    assert "only 8 test images per class" in text
    assert "16 in all" in text and "highpass:4" in text
    assert f"accuracy 0.750 has a 95% interval of {lo:.3f}-{hi:.3f}" in text
    # The interval really is too wide to mean much: 0.53-0.90.
    assert (round(lo, 2), round(hi, 2)) == (0.51, 0.9)


def test_twenty_per_class_is_enough_and_the_smallest_class_counts():
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSplitWarning)
        assert warn_small_test(_metrics(MIN_TEST_PER_CLASS, 15)) is False
    labels = torch.tensor([0] * 30 + [1] * 5)  # unbalanced: the 5 of class 1 decide
    m = compute_metrics(labels, torch.nn.functional.one_hot(labels, 2).float(), ["a", "b"])
    with pytest.warns(SmallSplitWarning, match="only 5 test images per class"):
        assert warn_small_test(m) is True


@pytest.fixture(scope="module")
def pair():
    return toy_pair("hf", 60, ToyConfig(size=8), seed=1)


def test_train_probe_warns_about_a_missing_validation_set_and_a_small_test_set(pair):
    tr, va, te = split_sets(pair, balanced_split(pair, SplitConfig(test_per_class=10, val_per_class=0)))
    assert va is None
    with pytest.warns(SmallSplitWarning) as rec:
        run = train_probe(tr, va, TINY, test_set=te, device="cpu")
    texts = [str(w.message) for w in rec if w.category is SmallSplitWarning]
    assert len(texts) == 2
    assert texts[0].startswith("no validation set") and "all 10 steps" in texts[0]
    lo, hi = run.test.accuracy_ci95
    assert "only 10 test images per class" in texts[1]
    assert f"{lo:.3f}-{hi:.3f}" in texts[1]


def test_a_large_enough_split_trains_without_warnings(pair):
    tr, va, te = split_sets(pair, balanced_split(pair, SplitConfig(test_per_class=20, val_per_class=5)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSplitWarning)
        run = train_probe(tr, va, TINY, test_set=te, device="cpu")
    assert run.test.n == 40


def test_cli_prints_one_warning_line_per_problem_and_lists_them_in_the_json(capsys, tmp_path, pair):
    from safetensors.torch import save_file

    srcs = []
    for s in pair:
        path = tmp_path / f"{s.name}.safetensors"
        save_file({"images": s.get(torch.arange(len(s))).contiguous()}, str(path))
        srcs.append(f"--source={s.name}={path}")
    argv = ["train", *srcs, "--test-per-class", "6", "--val-per-class", "0", "--steps", "10", "--width", "4"]
    assert main([*argv, "--device", "cpu", "--json"]) == 0
    captured = capsys.readouterr()
    res = json.loads(captured.out)
    lines = [ln for ln in captured.err.splitlines() if "warning:" in ln]
    assert len(res["warnings"]) == 2, res["warnings"]
    assert lines == [f"genprobe: warning: {w}" for w in res["warnings"]]
    assert res["warnings"][0].startswith("no validation set")
    lo, hi = res["accuracy_ci95"]
    assert "only 6 test images per class" in res["warnings"][1]
    assert f"{lo:.3f}-{hi:.3f}" in res["warnings"][1]


def test_robustness_checks_the_test_split_it_evaluates_itself(pair):
    from genprobe.experiments import robustness

    split = SplitConfig(test_per_class=8, val_per_class=4)
    with pytest.warns(SmallSplitWarning, match="only 8 test images per class") as rec:
        rep = robustness(pair, ("none", "blur:1"), TINY, split, device="cpu", progress=False)
    texts = [str(w.message) for w in rec if w.category is SmallSplitWarning]
    assert len(texts) == 1
    assert f"accuracy {rep.rows[0][1]:.3f}" in texts[0]
