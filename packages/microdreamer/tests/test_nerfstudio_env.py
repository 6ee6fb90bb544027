"""The nerfstudio backend in its own environment (slow: builds packages/microdreamer/envs/nerfstudio with uv and
runs one SIR iteration there on the CPU). Skips, saying why, where uv or the packages (offline) are unavailable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ENV = Path(__file__).resolve().parents[1] / "envs" / "nerfstudio"

SCRIPT = """
import json, torch
torch.set_num_threads(1)
from importlib.metadata import entry_points
backend = {e.name: e for e in entry_points(group="microdreamer.backends")}["nerfstudio"].load()
from microdreamer.presets import get_preset
from microdreamer.sir import run_sir
from microdreamer.toy import HeldOut, toy_denoiser
den = toy_denoiser()
p = get_preset("toy", render_size=12, total_steps=2, inner_steps=10, init_steps=10)
r = run_sir(backend(generator=torch.Generator().manual_seed(0)), den, p, generator=torch.Generator().manual_seed(0),
            evaluate=HeldOut(den, size=12))
import importlib.metadata as m
print(json.dumps({"error": r.history.error, "nfe": r.history.nfe, "nerfstudio": m.version("nerfstudio")}))
"""


@pytest.mark.slow
def test_nerfstudio_backend_runs_one_sir_iteration_in_its_own_environment():
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH: cannot build the nerfstudio environment")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    sync = subprocess.run(
        [uv, "sync", "--frozen", "--offline"], cwd=ENV, capture_output=True, text=True, env=env
    )
    if sync.returncode != 0:
        last = (sync.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(
            f"cannot build the nerfstudio environment offline (run `uv sync` in {ENV} once online): {last}"
        )
    py = ENV / ".venv" / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    out = subprocess.run([str(py), "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    rep = json.loads(out.stdout.strip().splitlines()[-1])
    assert rep["nerfstudio"] >= "1.1.5"
    assert rep["nfe"] == [0, 20, 44] and rep["error"][-1] < 0.6 * rep["error"][0]


def test_nerfstudio_is_not_in_the_workspace_lock():
    lock = Path(__file__).resolve().parents[3] / "uv.lock"
    if not lock.is_file():
        pytest.skip("not inside the workspace checkout")
    assert 'name = "nerfstudio"' not in lock.read_text(encoding="utf-8")
