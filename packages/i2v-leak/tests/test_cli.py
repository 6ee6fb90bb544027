"""The console script, offline on --model tiny: every subcommand with --json, and the user errors."""

from __future__ import annotations

import json

import pytest
from i2v_leak.cli import main

pytest.importorskip("diffusers")


def _json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return json.loads(out[0])


def test_help_exits_cleanly(capsys):
    assert main([]) == 0  # no command: the overview is what was asked for
    assert "i2v-leak" in capsys.readouterr().out
    for cmd in ("stats", "generate", "compare", "train", "presets", "bench"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "--json" in capsys.readouterr().out


def test_presets(capsys):
    assert main(["presets", "--json"]) == 0
    r = _json(capsys)
    assert r["presets"]["videocrafter1"]["official_mu_max"] == 4.0
    assert r["presets"]["svd"]["M"] == 100.0
    assert main(["presets"]) == 0
    assert "dynamicrafter" in capsys.readouterr().out


def test_stats_generate_compare_round_trip(tmp_path, capsys):
    common = ["--model", "tiny", "--device", "cpu", "--json"]
    assert (
        main(
            ["stats", "--videos", "synthetic", "--num-synthetic", "4", "--out", str(tmp_path / "s"), *common]
        )
        == 0
    )
    s = _json(capsys)
    assert s["count"] == 4
    assert s["latent_shape"] == [2, 4, 16, 16]
    assert s["tr_cov_over_d"] > 0
    stats_file = s["stats"]
    # refuses to overwrite
    assert (
        main(
            ["stats", "--videos", "synthetic", "--num-synthetic", "2", "--out", str(tmp_path / "s"), *common]
        )
        == 2
    )
    assert "already holds latent_stats.safetensors" in _json(capsys)["error"]

    gen = ["generate", "--pipeline", "svd", "--image", "synthetic", "--steps", "2", *common]
    assert main([*gen, "--stats", stats_file, "--out", str(tmp_path / "g")]) == 0
    g = _json(capsys)
    assert g["fixed"]
    assert g["analytic_init"]
    assert g["M"] == 100.0
    assert g["shape"] == [2, 3, 32, 32]
    assert (tmp_path / "g" / "video.gif").is_file()
    assert (tmp_path / "g" / "frames.png").is_file()
    assert (g["fps"], g["noise_aug_strength"]) == (3, None)  # the paper's table, the pipeline's default
    assert main([*gen, "--baseline", "--out", str(tmp_path / "b")]) == 0
    assert _json(capsys)["fixed"] is False
    # the released CIL-SVD values
    assert main([*gen, "--preset", "svd-cil", "--out", str(tmp_path / "p")]) == 0
    g = _json(capsys)
    assert (g["fps"], g["noise_aug_strength"]) == (6, 0.002)
    assert main([*gen, "--preset", "i2vgenxl", "--out", str(tmp_path / "q")]) == 2
    assert "not a svd preset" in _json(capsys)["error"]

    cmp_ = [
        "compare",
        "--image",
        "synthetic",
        "--steps",
        "2",
        "--stats",
        stats_file,
        "--out",
        str(tmp_path / "c"),
        *common,
    ]
    assert main(cmp_) == 0
    c = _json(capsys)
    assert set(c["motion_score"]) == {"baseline", "fixed"}
    assert (tmp_path / "c" / "compare.gif").is_file()
    assert (tmp_path / "c" / "compare.png").is_file()


def test_generate_i2vgenxl(tmp_path, capsys):
    args = [
        "generate",
        "--pipeline",
        "i2vgenxl",
        "--model",
        "tiny",
        "--image",
        "synthetic",
        "--prompt",
        "a square",
        "--steps",
        "2",
        "--M",
        "900",
        "--device",
        "cpu",
        "--json",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    r = _json(capsys)
    assert r["M"] == 900
    assert r["analytic_init"] is False


def test_train(tmp_path, capsys):
    args = [
        "train",
        "--model",
        "tiny",
        "--videos",
        "synthetic",
        "--num-synthetic",
        "2",
        "--steps",
        "1",
        "--device",
        "cpu",
        "--json",
        "--out",
        str(tmp_path / "t"),
    ]
    assert main(args) == 0
    r = _json(capsys)
    assert r["steps"] == 1
    assert r["timenoise"]
    assert r["beta_m"] == 15.0
    assert (tmp_path / "t" / "unet" / "config.json").is_file()
    assert main(args) == 2  # a finished run is not silently replaced
    assert "--overwrite" in _json(capsys)["error"]
    assert (tmp_path / "t" / "checkpoints" / "latest").is_file()
    # --overwrite resumes from the run's last checkpoint (nothing left to train) and rewrites only the UNet
    (tmp_path / "t" / "notes.txt").write_text("mine")
    assert main([*args, "--overwrite"]) == 0
    r = _json(capsys)
    assert r["resumed_from"] == 1 and r["steps"] == 1
    assert (tmp_path / "t" / "notes.txt").read_text() == "mine"
    assert main([*args[:-1], str(tmp_path / "fresh"), "--resume"]) == 2
    assert "no checkpoint" in _json(capsys)["error"]


def test_user_errors(tmp_path, capsys):
    assert (
        main(
            [
                "generate",
                "--model",
                "someone/not-downloaded",
                "--image",
                "synthetic",
                "--json",
                "--device",
                "cpu",
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )
    err = _json(capsys)
    assert "offline" in err["error"]
    assert "--local-dir" in err["error"]
    assert (
        main(
            [
                "generate",
                "--model",
                "tiny",
                "--image",
                str(tmp_path / "none.png"),
                "--json",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "no such image" in _json(capsys)["error"]
    assert (
        main(["stats", "--videos", "synthetic", "--height", "30", "--json", "--out", str(tmp_path / "y")])
        == 2
    )
    assert "multiple of 8" in _json(capsys)["error"]


def test_bench(capsys):
    assert main(["bench", "--model", "tiny", "--device", "cpu", "--repeats", "1", "--json"]) == 0
    r = _json(capsys)
    assert r["moments_agree"] is True
    assert r["fixed_speed_ratio"] > 0
    assert r["generate_stock_s"] > 0


def test_compare_with_local_raft_and_clip(tmp_path, capsys):
    pytest.importorskip("torchvision")
    from torchvision.models.optical_flow import raft_small

    from gen_common.checkpoint import save_state_dict
    from gen_common.testing.video_tiny import tiny_clip_vision_model

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    save_state_dict(raft_small(weights=None).state_dict(), tmp_path / "raft.safetensors")
    tiny_clip_vision_model(seed=0).save_pretrained(tmp_path / "clip")
    args = [
        "compare",
        "--model",
        "tiny",
        "--image",
        "synthetic",
        "--steps",
        "2",
        "--device",
        "cpu",
        "--json",
        "--raft",
        str(tmp_path / "raft.safetensors"),
        "--clip",
        str(tmp_path / "clip"),
        "--out",
        str(tmp_path / "c"),
    ]
    assert main(args) == 0
    r = _json(capsys)
    assert set(r["flow_motion"]) == {"baseline", "fixed"}
    assert -1 <= r["temporal_consistency"]["fixed"] <= 1
    assert -1 <= r["image_alignment"]["baseline"] <= 1


def test_bad_files_and_values_are_one_line_errors(tmp_path, capsys):
    """A damaged image or statistics file, and non-positive options, are user errors (exit 2), not tracebacks;
    they fail before the model is loaded."""
    (tmp_path / "bad.png").write_bytes(b"not an image")
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    base = ["generate", "--model", "tiny", "--device", "cpu", "--json", "--out", str(tmp_path / "o")]
    cases = [
        (["--image", str(tmp_path / "bad.png")], "cannot read"),
        (["--image", "synthetic", "--stats", str(tmp_path / "bad.safetensors")], "not a readable"),
        (["--image", "synthetic", "--steps", "0"], "--steps must be at least 1"),
        (["--image", "synthetic", "--M", "nan"], "--M must be a finite number"),
        (["--image", "synthetic", "--M", "0"], "--M must be greater than 0"),
        (["--image", "synthetic", "--height", "-8"], "--height must be at least 8"),
        (["--image", "synthetic", "--guidance", "inf"], "--guidance must be a finite number"),
    ]
    for extra, msg in cases:
        assert main([*base, *extra]) == 2, extra
        assert msg in _json(capsys)["error"]
    import torch

    if not torch.cuda.is_available():
        cuda = ["generate", "--model", "tiny", "--image", "synthetic", "--device", "cuda", "--json"]
        assert main([*cuda, "--out", str(tmp_path / "c")]) == 2
        assert "CUDA is not available" in _json(capsys)["error"]
    frames = tmp_path / "clips" / "a"
    frames.mkdir(parents=True)
    (frames / "0.png").write_bytes(b"broken frame")
    args = [
        "stats",
        "--model",
        "tiny",
        "--videos",
        str(tmp_path / "clips"),
        "--json",
        "--out",
        str(tmp_path / "s"),
    ]
    assert main(args) == 2
    assert "cannot read" in _json(capsys)["error"]


def test_train_bad_numbers_are_one_line_errors_that_write_nothing(tmp_path, capsys):
    out = tmp_path / "t"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    base = [
        "train",
        "--model",
        "tiny",
        "--videos",
        "synthetic",
        "--device",
        "cpu",
        "--json",
        "--out",
        str(out),
    ]
    for extra, msg in [
        (["--steps", "0"], "--steps must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--lr", "nan"], "--lr must be a finite number"),
        (["--beta-m", "-1"], "--beta-m must be greater than 0"),
        (["--pipeline", "i2vgenxl"], "use --pipeline svd"),
    ]:
        assert main([*base, *extra]) == 2, extra
        assert msg in _json(capsys)["error"]
    assert sorted(p.name for p in out.rglob("*")) == ["notes.txt"]


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from i2v_leak.cli import main\n"
        "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "--no-timenoise" in res.stdout and "--ema-decay" in res.stdout


def test_train_learning_rate_default_is_the_svd_preset():
    from i2v_leak.presets import get_preset
    from i2v_leak.runs import TrainRun

    assert TrainRun(videos="synthetic").train.lr == get_preset("svd").lr
