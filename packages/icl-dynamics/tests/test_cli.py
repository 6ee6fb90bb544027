import importlib
import json
import sys
import textwrap

import pytest
import torch
from icl_dynamics.cli import main

from gen_common.testing import assert_refused_without_writing


def run_json(capsys, argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_help_exits_cleanly(capsys):
    assert main([]) == 0
    assert "icl-dynamics" in capsys.readouterr().out


@pytest.mark.parametrize("cmd", ["theory", "train", "sweep", "plot", "bench"])
def test_subcommand_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "--json" in capsys.readouterr().out


def test_theory_prints_the_closed_form(capsys):
    out = run_json(capsys, ["theory", "--x1", "gaussian", "--sigma", "1", "--d", "5", "--T", "100"])
    assert out["predicted_ab"] == pytest.approx(0.191905, abs=1e-6)
    assert out["predicted_ab_limit"] == pytest.approx(0.2)
    assert run_json(capsys, ["theory", "--x1", "sparse", "--c", "2", "--d", "5", "--T", "100"])[
        "predicted_ab"
    ] == pytest.approx(0.25)


def test_theory_with_a_custom_sampler(capsys, tmp_path, monkeypatch):
    (tmp_path / "my_x1.py").write_text(
        textwrap.dedent(
            """
            import torch

            def rademacher(n, d, generator):
                return torch.randint(0, 2, (n, d), generator=generator).double() * 2 - 1
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = run_json(
        capsys,
        [
            "theory",
            "--x1",
            "custom",
            "--sampler",
            "my_x1:rademacher",
            "--d",
            "3",
            "--T",
            "20",
            "--mc-samples",
            "20000",
        ],
    )
    assert out["moments"]["m6"] == pytest.approx(1.0)  # |x| = 1: every even moment is 1 ...
    assert out["recovers"]  # ... so |x|² ∈ {0, m₆/m₄}: the mesa-optimizer recovers W as T → ∞
    sys.modules.pop("my_x1", None)


def test_train_json_and_outputs(capsys, tmp_path):
    argv = ["train", "--x1", "sparse", "--d", "2", "--T", "8", "--m", "200", "--m-test", "100", "--a0", "0.1"]
    out = run_json(capsys, [*argv, "--b0", "0.1", "--out", str(tmp_path / "run")])
    for key in ("ab", "predicted_ab", "final_loss", "max_offdiag", "epochs", "lr", "converged"):
        assert key in out
    assert out["ab"] == pytest.approx(1.0, rel=1e-3)
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "history.json").is_file()
    assert any(p.endswith("ab_sparse_s1.png") for p in out["figures"])
    # An existing output folder is refused without --overwrite.
    assert main([*argv, "--out", str(tmp_path / "run"), "--json"]) == 2
    assert "overwrite" in json.loads(capsys.readouterr().out)["error"]


def test_sweep_resumes_and_plot_writes_pngs(capsys, tmp_path):
    argv = ["sweep", "--families", "sparse", "--d", "2", "--T", "6", "--m", "60", "--m-test", "40"]
    argv += ["--epochs", "3", "--out", str(tmp_path / "sw")]
    first = run_json(capsys, argv)
    assert first["runs"] == 9
    assert first["resumed"] == 0
    assert (tmp_path / "sw" / "summary.csv").read_text().count("\n") == 10
    again = run_json(capsys, argv)
    assert again["resumed"] == 9
    plots = run_json(capsys, ["plot", "--runs", str(tmp_path / "sw")])
    assert len(plots["figures"]) == 3 * 2 + 1
    assert main(["plot", "--runs", str(tmp_path / "sw"), "--json"]) == 2  # figures exist: refuse
    capsys.readouterr()


def test_bench_runs_at_tiny_size(capsys):
    out = run_json(
        capsys, ["bench", "--d", "2", "--T", "8", "--m", "40", "--epochs", "2", "--baseline-epochs", "1"]
    )
    assert out["max_param_diff_vs_baselines"] < 1e-4
    assert set(out["per_epoch_s"]) == {"ours", "direct+analytic", "direct+autograd"}


def test_user_errors_exit_2(capsys):
    assert main(["theory", "--T", "2", "--json"]) == 2
    assert "T" in json.loads(capsys.readouterr().out)["error"]
    assert main(["theory", "--x1", "custom", "--json"]) == 2
    assert "--sampler" in json.loads(capsys.readouterr().out)["error"]
    assert main(["plot", "--runs", "/nonexistent/sweep", "--json"]) == 2
    capsys.readouterr()
    # A sampler that is not (n, d, generator) -> tensor: one line naming the sampler, no traceback.
    assert main(["theory", "--x1", "custom", "--sampler", "math:sqrt", "--json"]) == 2
    assert "math:sqrt" in json.loads(capsys.readouterr().out)["error"]
    assert main(["train", "--m", "10", "--m-test", "-1", "--json"]) == 2
    assert "--m-test" in json.loads(capsys.readouterr().out)["error"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_a_user_error(capsys):
    assert main(["train", "--d", "2", "--T", "5", "--m", "10", "--device", "cuda", "--json"]) == 2
    assert "CUDA is not available" in json.loads(capsys.readouterr().out)["error"]


def test_train_refuses_an_existing_run_before_training(capsys, tmp_path, monkeypatch):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "history.json").write_text("{}")
    train_module = importlib.import_module("icl_dynamics.training")  # the package re-exports the function

    def no_training(*args, **kwargs):
        raise AssertionError("trained before refusing the output folder")

    monkeypatch.setattr(train_module, "train", no_training)
    assert main(["train", "--d", "2", "--T", "5", "--m", "10", "--out", str(tmp_path / "run"), "--json"]) == 2
    assert "--overwrite" in json.loads(capsys.readouterr().out)["error"]


def test_thread_choice():
    from icl_dynamics.runs import _threads

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert _threads(0, 1000, 20, 3, cpu) == 1  # the train example: tiny products
    assert _threads(0, 10_000, 100, 5, cpu) is None  # the paper's size: torch's default
    assert _threads(0, 1000, 20, 3, cuda) is None
    assert _threads(3, 1000, 20, 3, cpu) == 3
    with pytest.raises(ValueError, match="threads"):
        _threads(-1, 10, 5, 2, cpu)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--tol", "nan"], "--tol must be a finite number"),
        (["train", "--tol", "-1"], "--tol must be at least 0"),
        (["train", "--max-epochs", "0"], "--max-epochs must be at least 1"),
        (["train", "--lr", "inf"], "--lr must be a finite number"),
        (["train", "--m", "0"], "--m must be at least 1"),
        (["theory", "--sigma", "nan"], "--sigma must be a finite number"),
        (["sweep", "--epochs", "0"], "--epochs must be at least 1"),
        (["bench", "--threads", "0"], "--threads must be at least 1"),
    ],
)
def test_bad_numbers_are_one_line_errors_that_write_nothing(tmp_path, capsys, args, needle):
    assert_refused_without_writing(main, args, needle, "icl-dynamics", tmp_path, capsys)


def test_train_into_a_folder_holding_its_files(capsys, tmp_path):
    """Refused without --overwrite (nothing touched); --overwrite replaces only the command's files."""
    argv = [
        "train",
        "--x1",
        "sparse",
        "--d",
        "2",
        "--T",
        "6",
        "--m",
        "40",
        "--m-test",
        "0",
        "--max-epochs",
        "3",
    ]
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "ab_sparse_s1.png").write_bytes(b"user's picture")
    assert main([*argv, "--out", str(out), "--json"]) == 2
    assert "ab_sparse_s1.png" in json.loads(capsys.readouterr().out)["error"]
    assert (out / "ab_sparse_s1.png").read_bytes() == b"user's picture"
    assert sorted(p.name for p in out.iterdir()) == ["ab_sparse_s1.png", "notes.txt"]
    res = run_json(capsys, [*argv, "--out", str(out), "--overwrite"])
    assert (out / "ab_sparse_s1.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "model" / "model.safetensors").is_file() and res["epochs"] <= 3
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no scratch folder left


def test_help_does_not_import_torch():
    import subprocess

    code = (
        "import sys\n"
        "from icl_dynamics.cli import main\n"
        "for argv in (['--help'], ['train', '--help'], ['sweep', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--max-epochs" in res.stdout and "--families" in res.stdout
