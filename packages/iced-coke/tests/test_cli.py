"""The console script: one-line errors with exit code 2, JSON reports, a resumable search, the benchmark's counts
against its formula, and --help without torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from iced_coke.cli import main

PAIR = {"prompt": "A tea cup of iced coke.", "first_prompt": "tea cup", "first_describe": "a cup",
        "second_prompt": "iced coke", "second_describe": "dark drink"}  # fmt: skip


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_help_does_not_import_torch():
    code = "import sys; from iced_coke.cli import main\ntry: main(['search', '--help'])\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False") and "--switch-step" not in out and "--tau" in out


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"prompt0": {k: v for k, v in PAIR.items() if k != "second_describe"}}))
    code, _, err = run(["search", "--pairs", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "second_describe" in err and err.count("\n") == 1
    code, _, err = run(["sample", "--prompt", "a b", "--first-prompt", "a", "--switch-step", "50", "--steps", "40",
                        "--out", str(tmp_path / "s")], capsys)  # fmt: skip
    assert code == 2 and "outside 0..40" in err
    monkeypatch.delenv("ICED_COKE_LLM_URL", raising=False)
    good = tmp_path / "g.json"
    good.write_text(json.dumps({"prompt0": PAIR}))
    code, _, err = run(["mine", "--seeds", str(good), "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and "ICED_COKE_LLM_URL" in err


def test_search_json_and_resume(tmp_path, capsys):
    pairs = tmp_path / "prompt.json"
    pairs.write_text(json.dumps({"prompt0": PAIR}))
    argv = ["search", "--pairs", str(pairs), "--steps", "6", "--num-images", "1", "--batch-size", "1",
            "--guidance-scale", "3", "--out", str(tmp_path / "o"), "--json"]  # fmt: skip
    code, out, _ = run(argv, capsys)
    assert code == 0
    rep = json.loads(out)
    (res,) = rep["results"]
    assert 1 <= res["switch_step"] <= 3 and res["cache_used"] and rep["unet_calls"] > 0
    assert (tmp_path / "o" / "a_tea_cup_of_iced_coke.png").is_file()
    code, out, _ = run(argv, capsys)  # resumed: the pair is in search.jsonl, nothing is searched again
    again = json.loads(out)
    assert code == 0 and again["unet_calls"] == 0 and again["results"][0]["probes"] == res["probes"]


def test_bench_counts_follow_the_formula(capsys):
    code, out, _ = run(["bench", "--steps", "8", "--num-images", "1", "--batch-size", "1", "--json"], capsys)
    assert code == 0
    rep = json.loads(out)
    rows = {r["setting"]: r for r in rep["rows"]}
    assert rows["memo+cache"]["unet_calls"] == rep["formula"]["cache_expected"]
    assert rows["memo, rerun both stages"]["unet_calls"] == rep["formula"]["rerun_expected"]
    assert rows["official+cache"]["unet_calls"] == rep["formula"]["official_cache_expected"]
    assert rows["memo+cache"]["probes"] == sorted(
        set(rows["official+cache"]["probes"]), key=rows["official+cache"]["probes"].index
    )
    assert rep["ratios"]["unet_rerun_over_cache"] >= 1.0


@pytest.mark.slow
def test_sample_tiny_sdxl_handoff(tmp_path, capsys):
    code, out, _ = run(["sample", "--prompt", "a tea cup of iced coke", "--first-prompt", "tea cup", "--model",
                        "tiny-sdxl", "--refiner", "tiny", "--steps", "4", "--switch-step", "2",
                        "--out", str(tmp_path), "--json"], capsys)  # fmt: skip
    assert code == 0 and len(json.loads(out)["files"]) == 1
