"""The data experiment: mixing generated images into real training data vs replacing real data with them."""

import json

import pytest
import torch
from genprobe.cli import main
from genprobe.data import ImageSource, SplitConfig
from genprobe.experiments import is_chance
from genprobe.mixing import data_mixing, empirical_generator, gaussian_generator, ideal_accuracy
from genprobe.probe import ProbeConfig
from genprobe.toy import ToyConfig, toy_pair

TOY = ToyConfig(size=8)
# The toy's hf pair differs only above the cutoff: after the high-pass a classifier separates it perfectly.
PROBE = ProbeConfig(
    steps=120, eval_every=40, batch_size=32, width=8, lr=3e-3, patience=2, filter=f"highpass:{TOY.cutoff:g}"
)


def test_ideal_accuracy_is_one_plus_the_generated_fraction_over_two():
    assert ideal_accuracy(200, 0) == 0.5
    assert ideal_accuracy(200, 150) == pytest.approx((1 + 150 / 350) / 2)  # mix: diluted
    assert ideal_accuracy(50, 150) == pytest.approx(0.875)  # replace: same k, three quarters generated
    assert ideal_accuracy(0, 10) == 1.0


def test_empirical_generator_draws_training_images_without_replacement():
    x = torch.arange(10.0).reshape(10, 1, 1, 1)
    s = empirical_generator(x, 10, torch.Generator().manual_seed(0))
    assert sorted(s.reshape(-1).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="without replacement"):
        empirical_generator(x, 11, torch.Generator())


def test_gaussian_generator_reproduces_the_training_mean_and_covariance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 1, 2, 2, generator=g) @ torch.tensor([[1.0, 0.0], [0.8, 0.5]]) + 3.0
    s = gaussian_generator(x, 40000, torch.Generator().manual_seed(1))
    flat_x, flat_s = x.reshape(50, -1).double(), s.reshape(40000, -1).double()
    assert torch.allclose(flat_s.mean(0), flat_x.mean(0), atol=0.03)
    assert torch.allclose(torch.cov(flat_s.T), torch.cov(flat_x.T), atol=0.04)


def test_mixing_dilutes_and_replacing_does_not_on_a_toy_with_a_known_answer():
    """Real = hf-a, generated = hf-b (perfectly separable after the high-pass); the ideal generator's samples are
    a (1 - f, f) real/generated mixture, so the best accuracy is (1 + f) / 2: real-only at chance, mix 150 into
    200 real -> 0.714, replace 150 of 200 real -> 0.875. The classifier may fall short of the Bayes accuracy
    (it must learn a mixture from 70 images per class), never exceed it beyond the binomial noise."""
    real, gen = toy_pair("hf", 400, TOY, seed=0)
    split = SplitConfig(test_per_class=100, val_per_class=30)
    rep = data_mixing(real, gen, 200, [150], PROBE, split, device="cpu", progress=False)
    rows = {r[0]: r for r in rep.rows}
    assert list(rows) == ["real", "mix 150", "replace 150"]
    assert [(r[1], r[2]) for r in rep.rows] == [(200, 0), (200, 150), (50, 150)]
    acc = {k: r[4] for k, r in rows.items()}
    n_test = 200
    sigma = (0.25 / n_test) ** 0.5
    assert is_chance(acc["real"], n_test), acc
    for k in ("mix 150", "replace 150"):
        ideal = rows[k][8]
        assert ideal - 0.12 <= acc[k] <= ideal + 3 * sigma, (k, acc[k], ideal)
        lo, hi = rows[k][5], rows[k][6]
        assert lo <= acc[k] <= hi
        assert rows[k][7] == pytest.approx(2 * acc[k] - 1)
    assert acc["real"] < acc["mix 150"] < acc["replace 150"], acc
    assert acc["replace 150"] - acc["mix 150"] >= 0.08, acc


def test_mixing_refuses_impossible_settings_before_training():
    real, gen = toy_pair("hf", 30, TOY, seed=0)
    with pytest.raises(ValueError, match=r"k must be in 1\.\.n=10"):
        data_mixing(real, gen, 10, [11], PROBE, device="cpu")
    with pytest.raises(ValueError, match="needs 40"):
        data_mixing(real, gen, 20, [5], PROBE, device="cpu")
    with pytest.raises(ValueError, match="unknown fit"):
        data_mixing(real, gen, 10, [5], PROBE, fit="gan", device="cpu")
    other = ImageSource.from_tensor(torch.rand(30, 1, 4, 4), "other")
    with pytest.raises(ValueError, match="generated ones"):
        data_mixing(real, other, 10, [5], PROBE, device="cpu")


def test_mixing_command_reports_each_setting_and_writes_its_files(capsys, tmp_path):
    from safetensors.torch import save_file

    srcs = []
    for s in toy_pair("hf", 80, TOY, seed=2):
        path = tmp_path / f"{s.name}.safetensors"
        save_file({"images": s.get(torch.arange(len(s))).contiguous()}, str(path))
        srcs.append(f"--source={s.name}={path}")
    out = tmp_path / "mix"
    argv = ["mixing", *srcs, "--real", "40", "--generated", "10,40", "--fit", "gaussian", "--steps", "5"]
    argv += [
        "--width",
        "4",
        "--test-per-class",
        "20",
        "--val-per-class",
        "5",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    assert main([*argv, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["report"] == "data_mixing"
    assert [r[:4] for r in res["rows"]] == [
        ["real", 40, 0, 0.0],
        ["mix 10", 40, 10, 0.2],
        ["replace 10", 30, 10, 0.25],
        ["mix 40", 40, 40, 0.5],
        ["replace 40", 0, 40, 1.0],
    ]
    assert all(r[5] <= r[4] <= r[6] for r in res["rows"])
    assert res["warnings"] == []
    assert {p.name for p in out.iterdir()} == {"data_mixing.json", "data_mixing.csv", "data_mixing.png"}
    assert main([*argv[:5], "--generated", "0"]) == 2
    assert "--generated entries must be at least 1" in capsys.readouterr().err
