"""Training on two processes (`accelerate launch`, gloo on the CPU) at tiny size, through radd's training function
on gen_common's loop: both ranks end with identical weights, the ranks trained on different batches, only rank 0
writes files, and a run stopped half-way and resumed ends bit-identical to an uninterrupted one.

`accelerate launch --cpu --num_processes 2` starts ONE process unless MPI is installed; `--multi_gpu` is accelerate's
torchrun launcher and, with the CPU chosen by the training loop, gives two CPU processes. The test asserts that two
ranks really ran, so it cannot pass on one.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("accelerate")
pytest.importorskip("radd")

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_processes_train_in_step_and_resume_bit_identically(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    full, part = tmp_path / "full", tmp_path / "part"
    env = {**os.environ, "GEN_TRAIN_DEBUG_BATCHES": str(log / "batches"), "OMP_NUM_THREADS": "1"}
    # One launch, three jobs: 6 steps uninterrupted; 6 steps stopped after 3 (checkpointed); then a fresh model and
    # a fresh train() call, with the global RNG reseeded, resume that folder from disk to step 6.
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1", "--main_process_port", str(_free_port()),
        str(HERE / "_accel_train.py"), "--log", str(log), f"{full}:6", f"{part}:6:3", f"{part}:6",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    reports = sorted(log.glob("report.rank*"))
    lines = sorted(line for f in reports for line in f.read_text().splitlines())
    assert lines == [
        "rank 0 full: steps 6 resumed_from 0",
        "rank 0 part: steps 3 resumed_from 0",
        "rank 0 part: steps 6 resumed_from 3",
        "rank 1 full: steps 6 resumed_from 0",
        "rank 1 part: steps 3 resumed_from 0",
        "rank 1 part: steps 6 resumed_from 3",
    ], "two ranks ran every job"

    # Both ranks hold the same weights, and the resumed run equals the uninterrupted one bit for bit.
    w = {
        (job, r): load_file(log / f"weights-{job}.rank{r}.safetensors")
        for job in ("full", "part")
        for r in (0, 1)
    }
    assert _same(w["full", 0], w["full", 1])
    assert _same(w["part", 0], w["part", 1])
    assert _same(w["full", 0], w["part", 0]), "stopped at step 3 and resumed: not the uninterrupted weights"
    assert _same(w["full", 0], load_file(full / "final.safetensors"))

    # The ranks trained on different batches: the global batch is two distinct per-rank batches, not one copied.
    seen = {r: (log / f"batches.rank{r}").read_text().split("\n")[:-1] for r in (0, 1)}
    for r in (0, 1):  # full: steps 0-5, part: 0-2, resumed part: 3-5
        assert [int(x.split()[0]) for x in seen[r]] == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]
    hashes = {r: [x.split()[1] for x in seen[r]] for r in (0, 1)}
    assert not set(hashes[0]) & set(hashes[1]), "a batch was duplicated across the ranks"
    assert hashes[0][:6] == hashes[0][6:] and hashes[1][:6] == hashes[1][6:], (
        "the resumed run saw the same data"
    )

    # Only rank 0 wrote into the run folders (every open-for-write, rename, mkdir, remove is audited per rank).
    rank0 = (log / "writes.rank0").read_text()
    assert "final.safetensors" in rank0 and "latest" in rank0 and "optimizer.pt" in rank0
    assert not (log / "writes.rank1").exists() or (log / "writes.rank1").read_text() == ""
