"""The command pattern: flags from config fields, checks, the output-folder policy, reports, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Literal

import pytest

from gen_common.cli import Command, RunContext, arg, main_for, validate
from gen_common.config import TrainConfig


class Mode(Enum):
    FAST = "fast"
    SLOW = "slow"


@dataclass(frozen=True)
class ToyRun:
    """Write a toy file.

    More text shown by --help.
    """

    name: str = arg(help="a required name")
    count: int = arg(3, help="a count", min=1)
    scale: float = arg(1.0, help="a finite non-negative scale", min=0)
    method: Literal["a", "b"] = arg("a", help="a choice")
    mode: Mode = arg(Mode.FAST, help="an enum")
    cache: bool = arg(True, help="a switch")
    sizes: tuple[int, ...] = arg((1, 2), help="several ints", min=1)
    top_p: float | None = arg(None, help="optional", gt=0, max=1)
    src: Path | None = arg(None, positional=True, help="a positional path")
    seed: int = 0  # filled from --seed
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=5))


@dataclass
class ToyReport:
    name: str
    count: int
    seed: int
    value: float
    config: ToyRun


def toy(run: ToyRun, ctx: RunContext | None = None) -> ToyReport:
    ctx = RunContext.of(ctx)
    if ctx.out is not None:
        ctx.output("toy.txt").write_text(run.name)
    return ToyReport(run.name, run.count, run.seed, run.scale * sum(run.sizes), run)


main = main_for("toy", [Command("toy", toy, ToyRun, writes=("toy.txt",))], description="toy commands")


def run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_flags_come_from_fields(capsys):
    argv = "toy --name x --json --count 7 --steps 9 --sizes 3 4 --no-cache --method b --mode slow --seed 11 --lr 0.5"
    code, out, _ = run(argv.split(), capsys)
    assert code == 0
    rep = json.loads(out)
    assert rep["count"] == 7 and rep["seed"] == 11 and rep["value"] == 7.0
    cfg = rep["config"]
    assert cfg["cache"] is False and cfg["method"] == "b" and cfg["mode"] == "slow" and cfg["sizes"] == [3, 4]
    assert cfg["train"]["lr"] == 0.5 and cfg["train"]["steps"] == 9 and cfg["train"]["warmup_steps"] == 0
    assert cfg["seed"] == 11 and cfg["train"]["seed"] == 11  # common --seed fills same-named fields


def test_parsed_config_is_the_dataclass(capsys):
    seen = {}

    def grab(run: ToyRun, ctx: RunContext) -> dict:
        seen["run"], seen["ctx"] = run, ctx
        return {}

    m = main_for("toy", [Command("toy", grab, ToyRun)])
    assert m(["toy", "--name", "n", "--mode", "slow", "some/file"]) == 0
    assert seen["run"] == ToyRun(name="n", mode=Mode.SLOW, src=Path("some/file"))
    assert seen["ctx"].device == "auto" and seen["ctx"].out is None


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--scale", "nan"], "--scale must be a finite number"),
        (["--scale", "inf"], "--scale must be a finite number"),
        (["--scale", "-1"], "--scale must be at least 0"),
        (["--count", "0"], "--count must be at least 1"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--sizes", "2", "0"], "--sizes must be at least 1"),
        (["--top-p", "0"], "--top-p must be greater than 0"),
        (["--lr", "nan"], "--lr must be a finite number"),
        (["--warmup-steps", "-3"], "--warmup-steps must be at least 0"),
    ],
)
def test_bad_numbers_are_one_line_errors(argv, needle, capsys):
    code, _, err = run(["toy", "--name", "x", *argv], capsys)
    assert code == 2
    assert err.count("\n") == 1 and needle in err and err.startswith("toy: error:")


def test_argparse_type_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["toy", "--name", "x", "--count", "three"])
    assert exc.value.code == 2
    assert "--count expects an int, got 'three'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["toy", "--name", "x", "--method", "c"])
    assert exc.value.code == 2


def test_repeatable_flag():
    @dataclass(frozen=True)
    class Multi:
        source: tuple[str, ...] = arg(("a",), help="a source (repeat the flag)", repeat=True)
        size: tuple[int, ...] = arg((), help="sizes", repeat=True, min=1)

    seen = []
    m = main_for("m", [Command("go", lambda run, ctx: seen.append(run) or {}, Multi)])
    assert m(["go", "--source", "x", "--source", "y y", "--size", "3"]) == 0
    assert m(["go"]) == 0
    assert seen == [Multi(source=("x", "y y"), size=(3,)), Multi()]
    assert m(["go", "--size", "0"]) == 2


def test_validate_for_library_callers():
    with pytest.raises(ValueError, match="--count must be at least 1"):
        validate(ToyRun(name="x", count=0))
    with pytest.raises(ValueError, match="--lr must be greater than 0"):
        TrainConfig(lr=0.0)  # TrainConfig validates itself
    with pytest.raises(ValueError, match="--method must be one of a, b"):
        validate(ToyRun(name="x", method="z"))  # type: ignore[arg-type]


def test_output_policy(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    assert run(["toy", "--name", "first", "--out", str(out)], capsys)[0] == 0
    assert (out / "toy.txt").read_text() == "first"
    code, _, err = run(["toy", "--name", "second", "--out", str(out)], capsys)
    assert code == 2 and "already holds toy.txt" in err and "--overwrite" in err
    assert (out / "toy.txt").read_text() == "first"
    assert run(["toy", "--name", "third", "--out", str(out), "--overwrite"], capsys)[0] == 0
    assert (out / "toy.txt").read_text() == "third"
    assert (out / "mine.txt").read_text() == "user data"  # nothing else touched
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt", "toy.txt"]
    (tmp_path / "afile").write_text("x")
    code, _, err = run(["toy", "--name", "x", "--out", str(tmp_path / "afile")], capsys)
    assert code == 2 and "not a folder" in err


def test_run_context_output_policy_for_library_calls(tmp_path):
    ctx = RunContext(out=tmp_path)
    p = ctx.output("a.txt")
    p.write_text("1")
    assert ctx.output("a.txt") == p  # the same run may write its file again
    with pytest.raises(FileExistsError, match="--overwrite"):
        RunContext(out=tmp_path).output("a.txt")
    assert RunContext(out=tmp_path, overwrite=True).output("a.txt") == p
    with pytest.raises(ValueError, match="--out"):
        RunContext().output("a.txt")


def test_json_errors_and_debug(capsys, monkeypatch):
    code, out, _ = run(["toy", "--name", "x", "--count", "0", "--json"], capsys)
    assert code == 2 and json.loads(out)["type"] == "ValueError"
    monkeypatch.setenv("GEN_DEBUG", "1")
    with pytest.raises(ValueError):
        main(["toy", "--name", "x", "--count", "0"])


def test_unexpected_errors_are_not_hidden():
    def boom(run, ctx):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        main_for("t", [Command("toy", boom, ToyRun)])(["toy", "--name", "x"])


def test_keyboard_interrupt_is_one_line(capsys):
    def stop(run, ctx):
        raise KeyboardInterrupt

    code = main_for("t", [Command("toy", stop, ToyRun)])(["toy", "--name", "x"])
    assert code == 130 and capsys.readouterr().err == "t: interrupted\n"


def test_help_lists_commands_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["toy", "--help"])
    text = capsys.readouterr().out
    for needle in [
        "--steps STEPS",
        "a count (default: 3)",
        "--cache, --no-cache",
        "{a,b}",
        "--overwrite",
        "writes into --out: toy.txt",
        "More text shown by --help",
        "--lr LR",
    ]:
        assert needle in text, needle
    assert "--eps" not in text  # cli=False keeps a field off the command line


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from gen_common.cli import Command, main_for\n"
        "from gen_common.config import TrainConfig\n"
        "m = main_for('p', [Command('t', 'nowhere.module:fn', TrainConfig)])\n"
        "try:\n    m(['t', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "--steps" in res.stdout
