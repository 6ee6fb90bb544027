"""The probe on the toy with a known answer, early stopping, chunked-vs-plain parity, pre-filter parity."""

import dataclasses

import pytest
import torch
from genprobe.data import SplitConfig, balanced_split, split_sets
from genprobe.experiments import is_chance, toy_probe
from genprobe.probe import ProbeConfig, train_probe
from genprobe.toy import ToyConfig, band_fields, toy_pair

# Several tests here train without a validation set on purpose (parity of the training paths).
pytestmark = pytest.mark.filterwarnings("ignore::genprobe.config.SmallSplitWarning")

TOY = ToyConfig(size=16, channels=1)
FAST = ProbeConfig(steps=120, eval_every=40, batch_size=32, width=8, lr=3e-3, patience=2)
SPLIT = SplitConfig(test_per_class=150, val_per_class=40, seed=0)


def test_toy_bands_have_the_requested_power_and_nothing_in_the_gap():
    from genprobe.filters import bandpass, highpass, lowpass

    g = torch.Generator().manual_seed(0)
    x = (band_fields(512, TOY, 1.0, 0.5, g) - TOY.offset) / TOY.scale
    assert float(lowpass(x, TOY.r_low).std()) == pytest.approx(1.0, rel=0.05)
    assert float(highpass(x, TOY.cutoff).std()) == pytest.approx(0.5, rel=0.05)
    assert float(bandpass(x, TOY.r_low, TOY.r_high - 1e-6).abs().max()) < 1e-5  # the gap is empty


def test_toy_probe_chance_after_lowpass_and_perfect_after_highpass_and_the_reverse():
    """The acceptance test of the whole probe (paper: classifiers use high frequencies): identical low bands
    give chance after the low-pass, the differing high band near-perfect accuracy after the high-pass; the
    low-frequency pair gives the reverse."""
    r = TOY.cutoff
    report = toy_probe(TOY, FAST, num_images=340, split=SPLIT, include_raw=False, seed=0, device="cpu")
    acc = {(row[0], row[1]): row[2] for row in report.rows}
    n = report.rows[0][4]
    assert n == 300
    assert is_chance(acc[("hf", f"lowpass:{r:g}")], n), acc
    assert acc[("hf", f"highpass:{r:g}")] >= 0.95, acc
    assert acc[("lf", f"lowpass:{r:g}")] >= 0.95, acc
    assert is_chance(acc[("lf", f"highpass:{r:g}")], n), acc


def _sets(pair="hf", n=200):
    a, b = toy_pair(pair, n, TOY, seed=1)
    return split_sets([a, b], balanced_split([a, b], SplitConfig(test_per_class=60, val_per_class=30)))


def test_chunked_training_for_early_stopping_matches_one_uninterrupted_run():
    tr, va, _ = _sets()
    cfg = dataclasses.replace(FAST, steps=40, eval_every=10, filter="lowpass:5")
    chunked = train_probe(tr, va, dataclasses.replace(cfg, patience=100), device="cpu")
    plain = train_probe(tr, None, dataclasses.replace(cfg, patience=None), device="cpu")
    assert len(chunked.val_history) == 4
    assert chunked.steps == plain.steps == 40
    assert [h["loss"] for h in chunked.history] == pytest.approx([h["loss"] for h in plain.history], rel=1e-6)


def test_prefiltered_training_matches_filtering_every_batch():
    tr, _va, te = _sets()
    cfg = dataclasses.replace(FAST, steps=20, eval_every=10, patience=None, filter="highpass:5")
    a = train_probe(tr, None, dataclasses.replace(cfg, prefilter=True), test_set=te, device="cpu")
    b = train_probe(tr, None, dataclasses.replace(cfg, prefilter=False), test_set=te, device="cpu")
    assert [h["loss"] for h in a.history] == pytest.approx([h["loss"] for h in b.history], rel=1e-4)
    assert a.test.accuracy == pytest.approx(b.test.accuracy, abs=0.02)


def test_early_stopping_restores_the_best_weights_and_stops():
    tr, va, te = _sets()
    cfg = dataclasses.replace(FAST, steps=400, eval_every=10, filter="lowpass:5", patience=2)
    run = train_probe(tr, va, cfg, test_set=te, device="cpu")
    assert run.early_stopped
    assert run.steps < 400
    best = max(run.val_history, key=lambda v: v["accuracy"])
    assert run.best_step == int(best["step"])
    from genprobe.probe import evaluate

    assert evaluate(run.classifier, va, device="cpu").accuracy == pytest.approx(best["accuracy"])
    hit = train_probe(tr, va, dataclasses.replace(cfg, filter="none", target_accuracy=0.9), device="cpu")
    assert hit.early_stopped
    assert max(v["accuracy"] for v in hit.val_history) >= 0.9


def test_checkpoints_are_atomic_folders_and_resume(tmp_path):
    tr, va, _ = _sets()
    cfg = dataclasses.replace(FAST, steps=20, eval_every=10, patience=None)
    first = train_probe(tr, va, cfg, device="cpu", checkpoint_dir=tmp_path)
    assert (tmp_path / "latest").read_text().strip() == "step-00000020"
    again = train_probe(tr, va, cfg, device="cpu", checkpoint_dir=tmp_path)  # nothing left to do
    assert again.steps == 20
    for k, v in first.classifier.state_dict().items():
        assert torch.equal(v, again.classifier.state_dict()[k]), k


def test_fixed_normalizations_are_kept_and_data_statistics_are_fitted():
    tr, _, _ = _sets()
    cfg = dataclasses.replace(FAST, steps=1, patience=None, filter="highpass:5")
    data = train_probe(tr, None, cfg, device="cpu").classifier.norm
    x, _ = tr.batch(torch.arange(len(tr)))
    from genprobe.filters import highpass

    assert float(data.std) == pytest.approx(float(highpass(x, 5).std()), rel=0.05)
    fixed = train_probe(
        tr, None, dataclasses.replace(cfg, normalization="none"), device="cpu"
    ).classifier.norm
    assert float(fixed.mean) == 0.0
    assert float(fixed.std) == 1.0


def test_backbone_weights_initialise_a_whole_network_except_its_head(tmp_path):
    """--backbone-weights is used by every arch with a torchvision trunk (it used to be ignored unless linear_probe)."""
    import torchvision.models as tvm
    from genprobe.probe import _build

    from gen_common.checkpoint import save_state_dict

    torch.manual_seed(5)
    pretrained = tvm.resnet18(weights=None, num_classes=1000).state_dict()
    save_state_dict(pretrained, tmp_path / "r18.safetensors")
    real, fake = toy_pair("hf", 8, ToyConfig(size=16, channels=3))
    tr, _, _ = split_sets(
        [real, fake], balanced_split([real, fake], SplitConfig(test_per_class=2, val_per_class=0))
    )
    cfg = ProbeConfig(arch="resnet18", backbone_weights=str(tmp_path / "r18.safetensors"))
    net = _build(cfg, tr, None).net.state_dict()
    assert torch.equal(net["conv1.weight"], pretrained["conv1.weight"])
    assert torch.equal(net["layer4.1.bn2.running_var"], pretrained["layer4.1.bn2.running_var"])
    assert net["fc.weight"].shape == (2, 512)  # the head is sized for the sources and starts fresh
    with pytest.raises(ValueError, match="does not fit a resnet50 network"):
        _build(dataclasses.replace(cfg, arch="resnet50"), tr, None)
