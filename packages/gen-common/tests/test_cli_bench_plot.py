import argparse
import io
import json

import numpy as np
import pytest
import torch

from gen_common import (
    NFECounter,
    add_common_args,
    compare,
    emit,
    format_table,
    new_figure,
    progress,
    progress_enabled,
    run_cli,
    save_figure,
)
from gen_common import bench as bench_mod
from gen_common.jsonio import to_jsonable


def test_emit_json_is_one_object():
    buf = io.StringIO()
    emit({"loss": np.float32(0.5), "t": torch.tensor([1, 2]), "bad": float("nan")}, as_json=True, stream=buf)
    line = buf.getvalue()
    assert line.count("\n") == 1
    assert json.loads(line) == {"loss": 0.5, "t": [1, 2], "bad": None}


def test_emit_human_lines():
    buf = io.StringIO()
    emit({"a": 1.23456789}, as_json=False, stream=buf)
    assert buf.getvalue() == "a: 1.23457\n"


def test_to_jsonable_rejects_unknown():
    with pytest.raises(TypeError):
        to_jsonable(object())


def test_progress_quiet_without_tty(monkeypatch):
    monkeypatch.delenv("GEN_PROGRESS", raising=False)
    assert progress_enabled(None, io.StringIO()) is False
    assert progress_enabled(False) is False
    monkeypatch.setenv("GEN_PROGRESS", "1")
    assert progress_enabled(None, io.StringIO()) is True


def test_run_cli_turns_user_errors_into_exit_2(capsys):
    def main(argv):
        raise FileNotFoundError("no such file: x.csv")

    assert run_cli(main, ["--json"], prog="tool") == 2
    captured = capsys.readouterr()
    assert "tool: error: no such file: x.csv" in captured.err
    assert json.loads(captured.out)["error"] == "no such file: x.csv"
    assert run_cli(lambda argv: 0, []) == 0


def test_format_table():
    text = format_table(["a", "b"], [[1, 0.5], [22, 1 / 3]])
    assert text.splitlines()[0].split() == ["a", "b"]
    assert "0.3333" in text


def test_compare_uses_medians_and_alternates(monkeypatch):
    # A fake clock: baseline calls take 3 s, candidate calls 1 s; the ratio must be exactly 3.
    now = [0.0]
    monkeypatch.setattr(bench_mod.time, "perf_counter", lambda: now[0])
    order = []

    def base():
        order.append("b")
        now[0] += 3.0

    def cand():
        order.append("c")
        now[0] += 1.0

    res = compare(base, cand, repeats=4, warmup=1)
    assert res.baseline_s == 3.0 and res.candidate_s == 1.0 and res.ratio == 3.0
    assert order[2:] == ["b", "c", "c", "b", "b", "c", "c", "b"]


def test_nfe_counter_counts_rows():
    m = NFECounter(torch.nn.Identity())
    m(torch.zeros(3, 2))
    m(torch.zeros(5, 2))
    assert (m.calls, m.rows) == (2, 8)
    m.reset()
    assert (m.calls, m.rows) == (0, 0)


def test_png_written(tmp_path):
    fig, ax = new_figure()
    ax.plot([0, 1], [1, 0])
    p = save_figure(fig, tmp_path / "plot.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_extra_is_a_user_error(capsys):
    def main(argv):
        raise ImportError("needs transformers: pip install 'radd-diffusion[hf]'")

    assert run_cli(main, []) == 2
    assert "pip install 'radd-diffusion[hf]'" in capsys.readouterr().err

    def broken(argv):
        raise ImportError("cannot import name 'x'")

    with pytest.raises(ImportError):
        run_cli(broken, [])


def test_common_flags_parse_with_defaults():
    parser = argparse.ArgumentParser()
    add_common_args(parser, out_default="runs/x", seed_default=7)
    args = parser.parse_args([])
    assert (args.device, args.seed, args.json, args.out) == ("auto", 7, False, "runs/x")
    args = parser.parse_args(["--device", "cuda:1", "--seed", "3", "--json", "--out", "/tmp/o"])
    assert (args.device, args.seed, args.json, args.out) == ("cuda:1", 3, True, "/tmp/o")
    with pytest.raises(SystemExit):
        parser.parse_args(["--seed", "x"])


def test_progress_writes_nothing_when_disabled(capsys):
    assert list(progress(range(50), desc="quiet", enabled=False)) == list(range(50))
    assert capsys.readouterr().err == ""
    assert sum(progress(range(50), desc="shown", enabled=True, mininterval=0)) == sum(range(50))
    assert "shown" in capsys.readouterr().err


def test_device_errors_are_one_line_cli_errors(capsys):
    from gen_common import resolve_device

    def main(argv):
        resolve_device("cuda:99" if torch.cuda.is_available() else "cuda")

    assert run_cli(main, ["--json"], prog="tool") == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("tool: error: device 'cuda") and captured.err.count("\n") == 1
    assert json.loads(captured.out)["type"] == "DeviceUnavailableError"


def test_importing_gen_common_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, gen_common, gen_common.cli, gen_common.checkpoint, gen_common.testing; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert "torch" in loaded
    heavy = {"matplotlib", "diffusers", "transformers", "open_clip", "accelerate", "huggingface_hub"} & loaded
    assert not heavy, f"import gen_common loaded {heavy}; import them where they are used"
