import json
import subprocess
import sys

import pytest
import torch
from bfn_solver.cli import main


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_help_lists_commands_without_importing_torch(capsys):
    assert main([]) == 0  # no command: the overview is what was asked for
    text = capsys.readouterr().out
    assert all(c in text for c in ("sample", "order-check", "bench", "train"))
    code = (
        "import sys\n"
        "from bfn_solver.cli import main\n"
        "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "--batch-size" in res.stdout and "--ema-decay" in res.stdout


def test_sample_toys_json(capsys, tmp_path):
    assert (
        main(["sample", "--json", "--num-samples", "200", "--steps", "10", "--out", str(tmp_path / "s")]) == 0
    )
    out = _json(capsys)
    assert out["nfe"] == 10
    assert out["shape"] == [200, 2]
    assert out["sliced_wasserstein"] < 0.2
    assert (tmp_path / "s" / "samples.png").is_file()
    assert main(["sample", "--json", "--out", str(tmp_path / "s")]) == 2  # refuses to overwrite
    assert "overwrite" in _json(capsys)["error"]
    assert (
        main(
            [
                "sample",
                "--json",
                "--model",
                "toy-categorical",
                "--method",
                "sde_solver2",
                "--num-samples",
                "300",
            ]
        )
        == 0
    )
    assert _json(capsys)["total_variation"] < 0.3
    assert main(["sample", "--json", "--model", "toy-categorical", "--method", "solver++2"]) == 2


def test_order_check_and_bench_json(capsys, tmp_path):
    assert (
        main(
            [
                "order-check",
                "--json",
                "--quick",
                "--data",
                "continuous",
                "--methods",
                "solver1,solver++2",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    orders = _json(capsys)["orders"]
    assert set(orders) == {"continuous/solver1", "continuous/solver++2"}
    assert orders["continuous/solver++2"] > 1.7
    assert (tmp_path / "order_check.png").is_file()
    args = ["bench", "--json", "--data", "both", "--methods", "bfn,solver++2,solver1", "--nfes", "5,10",
            "--reference-steps", "20", "--num-samples", "300", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    res = {c["data"]: c for c in _json(capsys)["curves"]}
    assert set(res["continuous"]["curves"]) == {"bfn", "solver++2", "solver1"}
    assert res["discrete"]["reference_steps"] == 20
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert "bfn_at_20_steps" in saved["discrete"]
    assert (tmp_path / "bench.png").is_file()


@pytest.mark.parametrize("data", ["mixture2d", "categorical"])
def test_train_then_sample(capsys, tmp_path, data):
    out = tmp_path / data
    assert (
        main(
            [
                "train",
                "--json",
                "--data",
                data,
                "--steps",
                "5",
                "--batch-size",
                "16",
                "--hidden",
                "16",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    res = _json(capsys)
    assert res["steps"] == 5
    assert (out / "model" / "config.json").is_file()
    method = "solver++2" if data == "mixture2d" else "solver2_multistep"
    assert (
        main(
            [
                "sample",
                "--json",
                "--model",
                str(out),  # the folder `train --out` wrote: its model/ is found
                "--method",
                method,
                "--steps",
                "3",
                "--num-samples",
                "4",
            ]
        )
        == 0
    )
    res = _json(capsys)
    assert res["nfe"] == 3
    # the folder remembers its toy, so the samples are judged against the true distribution
    metric = "sliced_wasserstein" if data == "mixture2d" else "total_variation"
    assert 0 <= res[metric] < 2


def test_bad_inputs_give_one_line_errors(capsys, tmp_path):
    """Unknown methods, bad numbers, missing files and a network that returns NaN: exit 2 with a JSON error."""
    cases = [
        (["order-check", "--json", "--quick", "--methods", "nope"], "unknown method"),
        (
            ["order-check", "--json", "--quick", "--data", "discrete", "--methods", "solver++2"],
            "unknown method",
        ),
        (["bench", "--json", "--methods", "nope"], "unknown method"),
        (["bench", "--json", "--nfes", "5,x"], "--nfes"),
        (["bench", "--json", "--nfes", "0"], "--nfes"),
        (["sample", "--json", "--num-samples", "0"], "--num-samples"),
        (["sample", "--json", "--steps", "0"], "--steps"),
        (["sample", "--json", "--checkpoint", str(tmp_path / "missing.pt"), "--kind", "text8"], "not found"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = _json(capsys)["error"]
        assert message in err, (argv, err)
    # A model folder (as `train` writes it) whose weights hold NaN: the sampler's non-finite check, a user error.
    from bfn_solver.toy import ContinuousMLP, ContinuousMLPConfig

    net = ContinuousMLP(ContinuousMLPConfig(dim=2, hidden=8))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float("nan"))
    out = tmp_path / "t"
    net.save_pretrained(out / "model")
    assert (
        main(["sample", "--json", "--model", str(out / "model"), "--steps", "2", "--num-samples", "4"]) == 2
    )
    assert "non-finite" in _json(capsys)["error"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--steps", "0"], "--steps must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--hidden", "0"], "--hidden must be at least 1"),
        (["--lr", "nan"], "--lr must be a finite number"),
        (["--data", "shapes", "--hidden", "12"], "--hidden must be a multiple of 8"),
    ],
)
def test_train_bad_numbers_are_refused_before_any_file_is_written(capsys, tmp_path, flags, message):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["train", "--out", str(out), "--steps", "3", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("bfn-solver: error:")
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["notes.txt"]


def test_train_refuses_a_finished_model_and_sample_says_where_the_model_is(capsys, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--json", "--steps", "2", "--batch-size", "4", "--hidden", "8", "--out", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    weights = (out / "model" / "model.safetensors").read_bytes()
    assert main(argv) == 2  # a finished model is not replaced without --overwrite
    assert "--overwrite" in _json(capsys)["error"]
    assert (out / "model" / "model.safetensors").read_bytes() == weights
    # an interrupted run (checkpoints, no model yet): sample says where the model will be
    (out / "model" / "config.json").unlink()
    assert main(["sample", "--json", "--model", str(out)]) == 2
    assert "no finished model" in _json(capsys)["error"]
    assert main(["sample", "--json", "--model", str(tmp_path / "nowhere")]) == 2
    assert "toy-mixture" in _json(capsys)["error"]
