"""The console script on two folders of PNGs: train, sweep, pairwise, predict, toy export, and its errors."""

import csv
import json
import shutil
import subprocess
import sys

import pytest
from genprobe.cli import main

FAST = ["--steps", "20", "--eval-every", "10", "--width", "8", "--batch-size", "32", "--device", "cpu"]


def run_json(capsys, argv):
    code = main([*argv, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # exactly one JSON object
    return code, json.loads(out[0])


def test_help_exits_cleanly(capsys):
    assert main([]) == 0  # no command: the overview is what was asked for
    assert "genprobe" in capsys.readouterr().out
    for cmd in ("train", "sweep", "pairwise", "toy", "bench"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
    assert "cycles per image" in capsys.readouterr().out


def test_train_on_two_png_folders_prints_accuracy_and_saves_a_classifier(capsys, toy_folders, tmp_path):
    # A copy of one folder with an unreadable file: skipped with a warning, and counted in the JSON result.
    b = tmp_path / "hf-b"
    shutil.copytree(toy_folders["hf-b"], b)
    (b / "broken.png").write_bytes(b"not a png")
    srcs = [f"--source=hf-a={toy_folders['hf-a']}", f"--source=hf-b={b}"]
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        code, res = run_json(capsys, ["train", *srcs, "--filter", "highpass:5", *FAST, "--out", str(out)])
    assert code == 0
    assert res["skipped_files"] == {"hf-b": 1}
    assert 0.5 <= res["accuracy"] <= 1
    lo, hi = res["accuracy_ci95"]
    assert lo <= res["accuracy"] <= hi
    assert res["train_images"] + res["val_images"] + res["n"] == 240
    # The test confusion matrix is written as a table and a figure next to the classifier.
    with open(out / "confusion.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["true", "pred:hf-a", "pred:hf-b", "class_accuracy"]
    assert sum(int(v) for r in rows[1:] for v in r[1:3]) == res["n"]
    assert (out / "confusion.png").is_file()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["average_precision"] == res["average_precision"]
    assert 0 <= res["average_precision"] <= 1
    assert saved["accuracy"] == res["accuracy"] and saved["warnings"] == res["warnings"] == []
    assert res["filter"] == "highpass:5"
    assert res["per_class_accuracy"].keys() == set(toy_folders)
    assert (out / "classifier" / "model.safetensors").is_file()
    assert not (out / "checkpoints").exists()
    code, pred = run_json(
        capsys, ["predict", "--classifier", str(out / "classifier"), "--images", str(toy_folders["hf-a"])]
    )
    assert code == 0
    assert sum(pred["predicted_counts"].values()) == pred["images"] == 120
    # The folder is not overwritten without --overwrite (refused before any image is read).
    code, err = run_json(capsys, ["train", *srcs, *FAST, "--out", str(out)])
    assert code == 2
    assert "--overwrite" in err["error"]
    # `predict --classifier` also takes the folder `train --out` wrote.
    code, pred = run_json(capsys, ["predict", "--classifier", str(out), "--images", str(toy_folders["hf-b"])])
    assert code == 0 and pred["images"] == 120


def test_sweep_writes_the_plot_and_tables(capsys, toy_folders, tmp_path):
    srcs = [f"--source={k}={v}" for k, v in toy_folders.items()]
    code, res = run_json(capsys, ["sweep", *srcs, "--cutoffs", "5", *FAST, "--out", str(tmp_path / "s")])
    assert code == 0
    assert res["columns"] == ["cutoff", "lowpass_accuracy", "highpass_accuracy"]
    assert {p.rsplit(".", 1)[1] for p in res["files"]} == {"json", "csv", "png"}
    assert (tmp_path / "s" / "frequency_sweep.png").is_file()


def test_pairwise_and_toy_export(capsys, tmp_path):
    code, exp = run_json(
        capsys, ["toy", "--export", str(tmp_path / "toy"), "--num-images", "40", "--pairs", "lf"]
    )
    assert code == 0
    assert set(exp["exported"]) == {"lf-a", "lf-b"}
    srcs = [f"--source={k}={v}" for k, v in exp["exported"].items()]
    code, res = run_json(
        capsys, ["pairwise", *srcs, *FAST, "--test-per-class", "10", "--out", str(tmp_path / "pw")]
    )
    assert code == 0
    assert res["data"]["row_names"] == ["lf-a", "lf-b"]
    assert res["data"]["matrix"][0][1] == res["data"]["matrix"][1][0]
    # The export folder follows the --out policy: its images are replaced only with --overwrite.
    argv = ["toy", "--export", str(tmp_path / "toy"), "--num-images", "40", "--pairs", "lf"]
    code, err = run_json(capsys, argv)
    assert code == 2 and "--overwrite" in err["error"]
    assert run_json(capsys, [*argv, "--overwrite"])[0] == 0


def test_user_errors_are_one_line_and_exit_2(capsys, tmp_path, toy_folders):
    code, err = run_json(capsys, ["train", "--source", f"a={tmp_path}", *FAST])
    assert code == 2
    assert "at least 2 sources" in err["error"]
    (tmp_path / "empty").mkdir()
    code, err = run_json(
        capsys, ["train", "--source", f"a={tmp_path / 'empty'}", "--source", f"b={tmp_path}", *FAST]
    )
    assert code == 2
    assert "no images" in err["error"]
    code, err = run_json(capsys, ["train", "--source", "a=/no/such/dir", "--source", "b=/no/such/dir", *FAST])
    assert code == 2
    assert "does not exist" in err["error"]
    srcs = [f"--source={k}={v}" for k, v in toy_folders.items()]
    code, err = run_json(capsys, ["train", *srcs, *FAST, "--resume", "--out", str(tmp_path)])
    assert code == 2
    assert "no checkpoint" in err["error"]
    code, err = run_json(capsys, ["train", *srcs, "--filter", "median:3", *FAST])
    assert code == 2
    assert "unknown filter" in err["error"]
    # Bad experiment arguments are refused before any image is read or classifier trained.
    code, err = run_json(capsys, ["robustness", *srcs, "--perturbations", "none,jpeg:500", *FAST])
    assert code == 2
    assert "JPEG quality" in err["error"]
    code, err = run_json(capsys, ["sweep", *srcs, "--cutoffs", "4,-2", *FAST])
    assert code == 2
    assert "radius" in err["error"]


def test_overwrite_never_deletes_a_users_files(capsys, toy_folders, tmp_path):
    """--overwrite replaces the files a command writes; nothing else in --out (or its checkpoints/) is touched."""
    srcs = [f"--source={k}={v}" for k, v in toy_folders.items()]
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "checkpoints" / "mine.txt").write_text("mine too")
    for extra in ([], ["--overwrite"]):
        code, res = run_json(capsys, ["train", *srcs, *FAST, "--out", str(out), *extra])
        assert code == 0, res
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "checkpoints" / "mine.txt").read_text() == "mine too"
    assert not list((out / "checkpoints").glob("step-*"))  # its own checkpoints are removed after training
    code, _ = run_json(capsys, ["sweep", *srcs, "--cutoffs", "5", *FAST, "--out", str(out)])
    assert code == 0
    code, _ = run_json(capsys, ["sweep", *srcs, "--cutoffs", "5", *FAST, "--out", str(out), "--overwrite"])
    assert code == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "frequency_sweep.png").is_file() and (out / "classifier" / "model.safetensors").is_file()


def test_backbone_weights_are_used_or_refused(capsys, toy_folders, tmp_path):
    srcs = [f"--source={k}={v}" for k, v in toy_folders.items()]
    w = tmp_path / "w.safetensors"
    w.write_bytes(b"")
    code, err = run_json(capsys, ["train", *srcs, *FAST, "--arch", "small_cnn", "--backbone-weights", str(w)])
    assert code == 2
    assert "--backbone-weights initialises linear_probe or resnet18" in err["error"]


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from genprobe.cli import main\n"
        "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "--backbone-weights" in res.stdout and "--source NAME=PATH" in res.stdout
