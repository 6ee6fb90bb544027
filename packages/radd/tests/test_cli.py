"""The console script at tiny size: every subcommand with --json, and user errors as exit code 2."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from radd.cli import main

from gen_common.testing import assert_refused_without_writing


def _json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # exactly one JSON object on stdout
    return json.loads(out[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = random.Random(0)
    text = " ".join(rng.choice(["mask", "token", "cache", "score"]) for _ in range(600))
    (d / "text.txt").write_text(text)
    args = ["train", "--out", str(d / "m"), "--text", str(d / "text.txt"), "--length", "16", "--hidden", "16",
            "--layers", "1", "--heads", "2", "--steps", "4", "--batch-size", "4", "--eval-samples", "2",
            "--device", "cpu", "--json"]  # fmt: skip
    assert main(args) == 0
    return d


def test_help_exits_cleanly(capsys):
    assert main([]) == 0
    assert "radd" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    assert "--no-cache" in capsys.readouterr().out


def test_train_writes_a_model_folder(trained):
    m = trained / "m"
    assert (m / "config.json").is_file()
    assert (m / "model.safetensors").is_file()
    assert (m / "radd_tokenizer.json").is_file()
    log = json.loads((m / "train_log.json").read_text())
    assert log["steps"] == 4


def test_train_refuses_to_overwrite(trained, capsys):
    code = main(["train", "--out", str(trained / "m"), "--steps", "1", "--json"])
    assert code == 2
    assert "overwrite" in _json(capsys)["error"]


def test_sample_json(trained, capsys):
    assert main(["sample", "--model", str(trained / "m"), "--num-samples", "2", "--steps", "8", "--prefix", "mask",
                 "--json", "--device", "cpu"]) == 0  # fmt: skip
    r = _json(capsys)
    assert len(r["samples"]) == 2
    assert all(s.startswith("mask") and len(s) == 16 for s in r["samples"])
    assert r["nfe"] <= 8
    assert (
        main(
            ["sample", "--model", str(trained / "m"), "--ordered", "forward", "--num-samples", "1", "--json"]
        )
        == 0
    )
    assert _json(capsys)["nfe"] == 16


def test_sample_blocks(trained, capsys):
    args = ["sample", "--model", str(trained / "m"), "--num-samples", "2", "--steps", "8", "--block-length", "4",
            "--remasking", "confidence", "--json"]  # fmt: skip
    assert main(args) == 0
    r = _json(capsys)
    assert all(len(s) == 16 for s in r["samples"])
    assert r["nfe"] == 8  # confidence remasking reveals in every step of every block
    assert main([*args[:-1], "--block-length", "5"]) == 2
    assert "divide" in capsys.readouterr().err


def test_sample_writes_and_refuses_existing_file(trained, tmp_path, capsys):
    args = [
        "sample",
        "--model",
        str(trained / "m"),
        "--num-samples",
        "1",
        "--steps",
        "4",
        "--out",
        str(tmp_path),
        "--json",
    ]
    assert main(args) == 0
    assert (tmp_path / "samples.txt").is_file()
    capsys.readouterr()
    assert main(args) == 2


def test_eval_json(trained, capsys):
    assert main(["eval", "--model", str(trained / "m"), "--text", str(trained / "text.txt"), "--num-samples", "2",
                 "--num-sequences", "4", "--estimator", "lambda", "--json"]) == 0  # fmt: skip
    r = _json(capsys)
    assert r["num_sequences"] == 4
    assert r["nll_bound_nats_per_token"] > 0
    assert r["perplexity_bound"] > 1


def test_text_outside_the_alphabet(trained, tmp_path, capsys):
    """eval reports (and warns about) replaced characters; a prefix the model cannot represent is refused."""
    (tmp_path / "odd.txt").write_text("mask token ☃ cache score " * 4)
    assert main(["eval", "--model", str(trained / "m"), "--text", str(tmp_path / "odd.txt"), "--num-samples", "1",
                 "--json"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert json.loads(captured.out)["replaced_characters"] == 4
    assert "outside the model's alphabet" in captured.err
    assert main(["sample", "--model", str(trained / "m"), "--prefix", "☃", "--json"]) == 2
    assert "alphabet" in _json(capsys)["error"]


def test_convert_json(tmp_path, capsys):
    from radd.convert import to_official_state_dict
    from radd.model import RADD, RADDConfig

    from gen_common.checkpoint import save_state_dict

    src = tmp_path / "official"
    src.mkdir()
    cfg = {"tokens": 11, "model": {"hidden_size": 32, "n_heads": 4, "n_blocks": 2, "length": 16}}
    (src / "config.json").write_text(json.dumps(cfg))
    model = RADD(RADDConfig(vocab_size=11, max_length=16, hidden_size=32, num_layers=2, num_heads=4))
    save_state_dict(to_official_state_dict(model), src / "model.safetensors")
    assert main(["convert", str(src), str(tmp_path / "ours"), "--json"]) == 0
    r = _json(capsys)
    assert r["config"]["vocab_size"] == 11
    assert r["config"]["num_layers"] == 2
    assert main(["convert", str(src), str(tmp_path / "ours"), "--json"]) == 2  # refuses to overwrite


def test_bench_json(capsys, tmp_path):
    assert main(["bench", "--out", str(tmp_path), "--length", "16", "--steps", "8", "32", "--num-samples", "2", "--nfe-samples", "8",
                 "--repeats", "1", "--hidden", "16", "--layers", "1", "--heads", "2", "--json"]) == 0  # fmt: skip
    r = _json(capsys)
    assert [row["steps"] for row in r["rows"]] == [8, 32]
    assert all(row["identical"] for row in r["rows"])
    assert r["rows"][1]["nfe_ratio"] > 1.5
    assert json.loads((tmp_path / "bench.json").read_text())["rows"] == r["rows"]


def test_user_errors_exit_2(tmp_path, trained, capsys):
    assert main(["sample", "--model", str(trained / "m"), "--length", "17", "--json"]) == 2
    assert "max_length" in _json(capsys)["error"]
    assert main(["sample", "--model", str(tmp_path / "missing"), "--json"]) == 2
    assert "no such directory" in _json(capsys)["error"]
    assert main(["eval", "--model", "JingyangOu/radd-t-dce", "--json"]) == 2  # offline in tests
    assert "offline" in _json(capsys)["error"]


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "--length", "-3"],
        ["eval", "--num-samples", "0"],
        ["sample", "--steps", "0"],
        ["sample", "--length", "0"],
        ["bench", "--steps", "8", "0"],
    ],
)
def test_non_positive_counts_are_user_errors(trained, capsys, args):
    assert main([*args, "--model", str(trained / "m"), "--json"]) == 2
    assert "must be at least 1" in _json(capsys)["error"]


def test_missing_extra_is_a_user_error(trained, tmp_path, capsys, monkeypatch):
    import radd.tokenizers as toks

    def no_transformers(folder):
        raise ImportError('a Hugging Face tokenizer needs transformers: pip install "radd-diffusion[hf]"')

    monkeypatch.setattr(toks.HFTokenizer, "from_folder", staticmethod(no_transformers))
    (tmp_path / "tokenizer_config.json").write_text("{}")
    code = main(["sample", "--model", str(trained / "m"), "--tokenizer", str(tmp_path), "--json"])
    assert code == 2
    assert "radd-diffusion[hf]" in _json(capsys)["error"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sample", "--temperature", "nan"], "--temperature must be a finite number"),
        (["sample", "--temperature", "-1"], "--temperature must be at least 0"),
        (["sample", "--top-p", "1.5"], "--top-p must be at most 1"),
        (["train", "--steps", "0"], "--steps must be at least 1"),
        (["train", "--lr", "nan"], "--lr must be a finite number"),
        (["train", "--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_bad_numbers_are_one_line_errors_that_write_nothing(trained, tmp_path, capsys, args, needle):
    extra = ["--model", str(trained / "m")] if args[0] == "sample" else []
    assert_refused_without_writing(main, [*args, *extra], needle, "radd", tmp_path, capsys)


def test_overwrite_replaces_only_the_commands_files(trained, tmp_path, capsys):
    out = tmp_path / "t"
    base = ["train", "--out", str(out), "--text", str(trained / "text.txt"), "--length", "16", "--hidden", "8",
            "--layers", "1", "--heads", "2", "--steps", "2", "--batch-size", "2", "--eval-samples", "1", "--json"]  # fmt: skip
    assert main(base) == 0
    (out / "notes.txt").write_text("mine")
    first = (out / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert main(base) == 2  # a finished model is not replaced silently
    assert "--overwrite" in _json(capsys)["error"]
    # --overwrite with a longer run resumes from the checkpoint at step 2 and replaces only the command's files
    assert main([*base[:-3], "--steps", "4", "--overwrite", "--json"]) == 0
    r = _json(capsys)
    assert r["resumed_from"] == 2 and r["steps"] == 4
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "model.safetensors").read_bytes() != first
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no scratch folder left behind


@pytest.mark.filterwarnings(
    "ignore:Detected pickle protocol:UserWarning"
)  # torch's note on the tampered file
def test_tampered_optimizer_state_on_resume_is_one_line(trained, tmp_path, capsys):
    out = tmp_path / "t"
    base = ["train", "--out", str(out), "--text", str(trained / "text.txt"), "--length", "16", "--hidden", "8",
            "--layers", "1", "--heads", "2", "--steps", "2", "--batch-size", "2", "--eval-samples", "1", "--json"]  # fmt: skip
    assert main(base) == 0
    capsys.readouterr()
    opt = next((out / "checkpoints").glob("step-*/optimizer.pt"))
    opt.write_bytes(b"\x80\x04\x95 not a torch file")
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    assert main([*base[:-3], "--steps", "4", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(opt) in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == before
    assert (
        main([*base[:-3], "--steps", "4", "--overwrite", "--no-resume", "--json"]) == 0
    )  # the way out it names
    assert _json(capsys)["resumed_from"] == 0


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from radd.cli import main\n"
        "for argv in (['--help'], ['train', '--help'], ['sample', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--temperature" in res.stdout and "--warmup-steps" in res.stdout
