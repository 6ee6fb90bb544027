"""The console script: commands run in-process, bad input ends in one line and exit code 2, --help is light."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from microdreamer.cli import main
from PIL import Image


def test_help_does_not_import_torch():
    code = "import sys; from microdreamer.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False")


def test_run_toy_and_export_mesh(tmp_path, capsys):
    out = tmp_path / "o"
    rc = main(
        [
            "run",
            "--iterations",
            "2",
            "--render-size",
            "12",
            "--resolution",
            "24",
            "--gif-frames",
            "4",
            "--target-faces",
            "60",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["preset"] == "toy" and rep["iterations"] == 2 and rep["nfe"] > 0
    assert {p.name for p in out.iterdir()} == {"gaussians.ply", "mesh.obj", "orbit.gif", "history.json"}
    faces = sum(line.startswith("f ") for line in (out / "mesh.obj").read_text().splitlines())
    assert 0 < faces <= 60  # decimated, as the release exports
    assert main(["run", "--iterations", "2", "--out", str(out)]) == 2  # refuses to overwrite
    assert "already holds gaussians.ply" in capsys.readouterr().err
    rc = main(
        [
            "export-mesh",
            str(out / "gaussians.ply"),
            "--mesh-format",
            "ply",
            "--resolution",
            "24",
            "--out",
            str(tmp_path / "m"),
            "--json",
        ]
    )
    assert rc == 0 and json.loads(capsys.readouterr().out)["faces"] > 0
    rc = main(
        [
            "export-mesh",
            str(out / "gaussians.ply"),
            "--threshold",
            "1000",
            "--resolution",
            "24",
            "--out",
            str(tmp_path / "e"),
        ]
    )
    err = capsys.readouterr().err
    assert (
        rc == 2 and "no Gaussian density reaches the threshold" in err and len(err.strip().splitlines()) == 1
    )


def test_run_nerf_backend(tmp_path, capsys):
    rc = main(
        [
            "run",
            "--backend",
            "nerf",
            "--iterations",
            "2",
            "--render-size",
            "12",
            "--gif-frames",
            "2",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["backend"] == "nerf" and rep["heldout_error"] < 0.3
    assert {p.name for p in tmp_path.iterdir()} == {"orbit.gif", "history.json"}
    assert (
        main(["run", "--backend", "nerfstudio", "--out", str(tmp_path / "ns")]) == 2
    )  # not in this environment
    assert "own environment" in capsys.readouterr().err


def test_bad_inputs_exit_2(tmp_path, capsys, monkeypatch):
    (tmp_path / "bad.png").write_bytes(b"nope")
    assert main(["run", "--input", str(tmp_path / "bad.png"), "--out", str(tmp_path / "a")]) == 2
    assert "cannot decode" in capsys.readouterr().err
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(tmp_path / "flat.png")
    assert main(["run", "--input", str(tmp_path / "flat.png"), "--out", str(tmp_path / "b")]) == 2
    assert "no foreground" in capsys.readouterr().err
    a = np.zeros((16, 16, 4), np.uint8)
    a[4:12, 4:12] = 255
    Image.fromarray(a, "RGBA").save(tmp_path / "ok.png")
    monkeypatch.setitem(sys.modules, "diffusers", None)  # as if the extra were not installed
    assert (
        main(
            [
                "run",
                "--input",
                str(tmp_path / "ok.png"),
                "--model",
                "some/model",
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )
    assert 'pip install "microdreamer[zero123]"' in capsys.readouterr().err
    assert main(["run", "--input", str(tmp_path / "ok.png"), "--out", str(tmp_path / "d")]) == 2
    assert "needs --model" in capsys.readouterr().err
