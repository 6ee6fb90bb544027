import json

import pytest
import torch
from mdm_scaling.cli import main
from mdm_scaling.config import ModelConfig
from mdm_scaling.convert import to_smdm_state_dict
from mdm_scaling.model import MaskedDiffusionLM
from mdm_scaling.scaling import write_runs

from gen_common.checkpoint import save_state_dict
from gen_common.testing import assert_refused_without_writing


def run_json(capsys, *argv):
    code = main([*argv, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def test_help_exits_cleanly(capsys):
    assert main([]) == 0
    assert "mdm-scaling" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    assert "alpha" in capsys.readouterr().out


def test_presets_json(capsys):
    code, res = run_json(capsys, "presets")
    assert code == 0
    rows = {r[0]: r for r in res["rows"]}
    assert rows["170M"][-1] == 169897728


def test_fit_prints_laws_gap_and_writes_plots(capsys, tmp_path):
    rows = []
    for arch, A, alpha in (("mdm", 50.2, 0.0625), ("arm", 45.6, 0.0642)):
        for c in (1e18, 1e19, 1e20):
            n_opt = 0.05 * c**0.6
            for f in (0.25, 0.5, 1, 2, 4):
                rows.append({"arch": arch, "params": n_opt * f, "tokens": c / (6 * n_opt * f), "flops": c,
                             "loss": A * c**-alpha + 0.03 * torch.tensor(f).log().item() ** 2})  # fmt: skip
    csv = write_runs(rows, tmp_path / "runs.csv")
    code, res = run_json(capsys, "fit", str(csv))
    assert code == 0
    assert res["mdm"]["alpha"] == pytest.approx(0.0625, rel=0.01)
    assert res["arm"]["A"] == pytest.approx(45.6, rel=0.01)
    assert res["arm"]["beta"] == pytest.approx(0.6, rel=0.01)
    assert res["compute_gap"]["mdm"]["gap"] > 1
    assert all((tmp_path / n).is_file() for n in ("isoflop.png", "frontier.png"))
    code, err = run_json(capsys, "fit", str(csv))  # refuses to overwrite the plots
    assert code == 2
    assert "--overwrite" in err["error"]
    code, err = run_json(capsys, "fit", str(tmp_path / "missing.csv"))
    assert code == 2


def test_convert_train_eval_generate(capsys, tmp_path):
    cfg = ModelConfig(vocab_size=20, n_layer=1, n_head=2, n_embd=8, intermediate_size=16)
    save_state_dict(to_smdm_state_dict(MaskedDiffusionLM(cfg)), tmp_path / "off.safetensors")
    code, res = run_json(
        capsys, "convert", str(tmp_path / "off.safetensors"), "--n-head", "2", "--out", str(tmp_path / "conv")
    )
    assert code == 0
    assert res["model_class"] == "MaskedDiffusionLM"
    code, err = run_json(
        capsys, "convert", str(tmp_path / "off.safetensors"), "--out", str(tmp_path / "conv2")
    )
    assert code == 2
    assert "n_head" in err["error"]

    text = tmp_path / "corpus.txt"
    text.write_text("abcab cabca bcabc " * 200)
    out = tmp_path / "m"
    code, res = run_json(capsys, "train", "--arch", "mdm", "--preset", "tiny-1k", "--steps", "3", "--length", "8",
                         "--batch-size", "4", "--eval-samples", "2", "--text", str(text), "--out", str(out))  # fmt: skip
    assert code == 0
    assert res["flops"] == pytest.approx(6 * res["params"] * 3 * 4 * 8)
    task = tmp_path / "t.jsonl"
    task.write_text(json.dumps({"context": "abca", "choices": ["b", "c"], "answer": 0}) + "\n")
    code, res = run_json(
        capsys, "eval", str(task), "--model", str(out / "model"), "--num-samples", "4", "--cfg", "0.5"
    )
    assert code == 0
    assert res["tasks"]["t"]["n"] == 1
    code, res = run_json(
        capsys, "generate", "--model", str(out / "model"), "--prompt", "ab", "--length", "6", "--steps", "2"
    )
    assert code == 0
    assert all(s.startswith("ab") and len(s) == 6 for s in res["samples"])
    pairs = tmp_path / "sft.jsonl"
    pairs.write_text("\n".join(json.dumps({"prompt": "abc", "response": r}) for r in ("ab", "ca")) + "\n")
    code, res = run_json(capsys, "train", "--arch", "mdm", "--init", str(out / "model"), "--sft", str(pairs),
                         "--prompt-dropout", "0.5", "--steps", "2", "--length", "8", "--batch-size", "4",
                         "--out", str(tmp_path / "sft"))  # fmt: skip
    assert code == 0
    assert res["val_loss"] is None
    assert (tmp_path / "sft" / "model" / "tokenizer.json").is_file()
    code, err = run_json(
        capsys, "train", "--arch", "arm", "--init", str(out / "model"), "--out", str(tmp_path / "x")
    )
    assert code == 2
    assert "MaskedDiffusionLM" in err["error"]
    code, err = run_json(capsys, "generate", "--model", str(out / "model"), "--prompt", "xyz")
    assert code == 2
    assert "alphabet" in err["error"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["generate", "--model", "m", "--cfg", "nan"], "--cfg must be a finite number"),
        (["generate", "--model", "m", "--temperature", "inf"], "--temperature must be a finite number"),
        (["train", "--arch", "mdm", "--steps", "0"], "--steps must be at least 1"),
        (["train", "--arch", "mdm", "--lr", "nan"], "--lr must be a finite number"),
        (["eval", "--model", "m", "--num-samples", "0"], "--num-samples must be at least 1"),
        (["sweep", "--budgets", "1e9", "nan"], "--budgets must be a finite number"),
        (["speed", "--mdm-steps", "8", "0"], "--mdm-steps must be at least 1"),
    ],
)
def test_bad_numbers_are_one_line_errors_that_write_nothing(tmp_path, capsys, args, needle):
    assert_refused_without_writing(main, args, needle, "mdm-scaling", tmp_path, capsys)


def test_train_output_policy(tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("abcab cabca bcabc " * 200)
    out = tmp_path / "m"
    base = ["train", "--arch", "arm", "--preset", "tiny-1k", "--steps", "2", "--length", "8", "--batch-size", "2",
            "--eval-samples", "1", "--text", str(text), "--out", str(out)]  # fmt: skip
    assert run_json(capsys, *base)[0] == 0
    (out / "model" / "notes.txt").write_text("mine")
    code, err = run_json(capsys, *base)
    assert code == 2 and "--overwrite" in err["error"]
    code, res = run_json(capsys, *base[:6], "4", *base[7:], "--overwrite")  # resumes at step 2, trains to 4
    assert code == 0 and res["resumed_from"] == 2 and res["steps"] == 4
    assert (out / "model" / "notes.txt").read_text() == "mine"


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mdm_scaling.cli import main\n"
        "for argv in (['--help'], ['train', '--help'], ['sweep', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--warmup-fraction" in res.stdout and "--budgets" in res.stdout


def test_reverse_prints_a_table_of_both_archs(capsys):
    """The ARM row has no infilling score: the table leaves that cell empty (it was a KeyError)."""
    assert (
        main(["reverse", "--facts", "3", "--steps", "2", "--preset", "tiny-1k", "--sample-steps", "2"]) == 0
    )
    out = capsys.readouterr().out
    assert "reverse_infill" in out and "num_facts: 3" in out
    assert main(["reverse", "--facts", "2"]) == 2
    assert "--facts must be at least 3" in capsys.readouterr().err


def test_paper_settings_preset(capsys, tmp_path):
    from mdm_scaling.compute import mean_sequence_length
    from mdm_scaling.runs import PAPER_SETTINGS

    assert PAPER_SETTINGS == {"ssl_prob": 0.01, "remasking": "random", "rope_cache": "bfloat16"}
    text = tmp_path / "corpus.txt"
    text.write_text("abcab cabca bcabc " * 200)
    base = ["train", "--arch", "mdm", "--preset", "tiny-1k", "--steps", "2", "--length", "8", "--batch-size", "4",
            "--eval-samples", "2", "--text", str(text)]  # fmt: skip
    code, plain = run_json(capsys, *base, "--out", str(tmp_path / "a"))
    assert code == 0
    assert plain["tokens"] == 2 * 4 * 8  # no stochastic length by default
    code, paper = run_json(capsys, *base, "--settings", "paper", "--out", str(tmp_path / "b"))
    assert code == 0
    assert paper["tokens"] == pytest.approx(2 * 4 * mean_sequence_length(8, 0.01))
    assert paper["tokens"] < plain["tokens"]
    # An explicit --ssl-prob wins over the preset.
    code, res = run_json(
        capsys, *base, "--settings", "paper", "--ssl-prob", "0", "--out", str(tmp_path / "c")
    )
    assert res["tokens"] == 2 * 4 * 8
    # Official checkpoints: --rope-cache bfloat16 (or --settings paper) builds the official table.
    cfg = ModelConfig(vocab_size=20, n_layer=1, n_head=2, n_embd=8, intermediate_size=16)
    save_state_dict(to_smdm_state_dict(MaskedDiffusionLM(cfg)), tmp_path / "off.safetensors")
    code, res = run_json(capsys, "convert", str(tmp_path / "off.safetensors"), "--n-head", "2",
                         "--rope-cache", "bfloat16", "--out", str(tmp_path / "conv"))  # fmt: skip
    assert code == 0
    assert json.loads((tmp_path / "conv" / "config.json").read_text())["rope_cache"] == "bfloat16"
