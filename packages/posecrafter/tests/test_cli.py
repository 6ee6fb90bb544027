import json
import subprocess
import sys

import numpy as np
import pytest
from posecrafter.cli import main
from posecrafter.render import synthetic_clip
from posecrafter.video_io import write_gif


def test_help_does_not_import_torch():
    code = "import sys\nfrom posecrafter.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nassert 'torch' not in sys.modules, 'torch imported'\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "generate" in r.stdout and "edit-preview" in r.stdout


def test_train_then_generate_offline(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            ["train", "--steps", "2", "--frames", "3", "--checkpoint-every", "0", "--out", str(out), "--json"]
        )
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    assert rep["steps"] == 2 and rep["trained_tensors"] > 0
    assert (out / "weights" / "posecrafter.safetensors").is_file() and (out / "train_strip.png").is_file()
    args = [
        "generate",
        "--weights",
        str(out / "weights"),
        "--frames",
        "3",
        "--steps",
        "2",
        "--target-frames",
        "2",
        "--out",
        str(out),
        "--json",
    ]
    assert main(args) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["frames"] == 2 and rep["edited_parts"] == 6
    assert (out / "video.gif").is_file() and (out / "strip.png").is_file()
    assert main(args) == 2  # refuses to overwrite without --overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_edit_preview_and_evaluate(tmp_path, capsys):
    assert main(["edit-preview", "--out", str(tmp_path), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["edited_parts"] == 12 and rep["fit_rms_px_max"] < 1.0
    frames, _ = synthetic_clip(3, 32, 32)
    write_gif(frames, tmp_path / "a.gif")
    write_gif(frames, tmp_path / "b.gif")
    assert (
        main(
            [
                "evaluate",
                "--generated",
                str(tmp_path / "a.gif"),
                "--reference",
                str(tmp_path / "b.gif"),
                "--json",
            ]
        )
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    assert rep["l1"] == 0.0 and rep["ssim"] == pytest.approx(1.0)


def _one_line_error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    frames, poses = synthetic_clip(3, 32, 32)
    write_gif(frames, tmp_path / "v.gif")
    posedir = tmp_path / "poses"
    posedir.mkdir()
    for i, p in enumerate(poses[:2]):
        (posedir / f"{i}.json").write_text(json.dumps(p.to_openpose_dict()))
    base = ["edit-preview", "--video", str(tmp_path / "v.gif"), "--out", str(tmp_path / "o")]
    _one_line_error(capsys, [*base, "--poses", str(posedir)], "3 frames but 2 poses")
    bad = poses[2].to_openpose_dict()
    bad["people"][0]["pose_keypoints_2d"] = [1.0] * 12
    (posedir / "2.json").write_text(json.dumps(bad))
    _one_line_error(capsys, [*base, "--poses", str(posedir)], "12 numbers")
    (tmp_path / "broken.gif").write_bytes(b"GIF89a broken")
    _one_line_error(
        capsys,
        ["edit-preview", "--video", str(tmp_path / "broken.gif"), "--poses", str(posedir)],
        "could not decode",
    )
    _one_line_error(
        capsys, ["train", "--model", "someone/sd-model", "--controlnet", "x/y", "--steps", "1"], "offline"
    )
    _one_line_error(capsys, ["generate", "--steps", "0"], "steps")


def test_bench_reports_ratios(capsys):
    assert (
        main(["bench", "--frames", "2", "--steps", "1", "--train-steps", "1", "--no-warmup", "--json"]) == 0
    )
    rep = json.loads(capsys.readouterr().out)
    assert {"posecrafter_vs_frame_by_frame", "temporal_modules_cost", "checkpointing_step_time"} <= set(
        rep["ratios"]
    )
    assert all(np.isfinite(v) and v > 0 for v in rep["ratios"].values())
