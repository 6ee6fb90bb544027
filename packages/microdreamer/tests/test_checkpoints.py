"""Checkpoint and resume: an interrupted SIR run resumed from its latest checkpoint ends bit-identical to an
uninterrupted one (Gaussians, call counter, targets, history), across densification; bad checkpoints are one-line
errors (exit 2) and nothing a user has is overwritten."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest
import torch
from microdreamer import sir as sir_module
from microdreamer.checkpoints import Checkpointer
from microdreamer.cli import main
from microdreamer.gaussians import GaussianModel
from microdreamer.presets import get_preset
from microdreamer.sds import run_sds
from microdreamer.sir import run_sir
from microdreamer.toy import HeldOut, toy_denoiser
from safetensors import safe_open

from gen_common.checkpoint import CheckpointError
from gen_common.testing import assert_refused_without_writing

SIR_TARGETS = sir_module.sir_targets
PRESET = get_preset(
    "toy", render_size=12, ref_size=12, num_pts=60, total_steps=5, inner_steps=3, init_steps=3
)


class _Stop(Exception):
    pass


def _sir(folder=None, *, every=2, resume=False, stop_after=None, monkeypatch=None, targets=None, seed=0):
    den = toy_denoiser()
    held = HeldOut(den, size=12, radius=PRESET.radius, views=3)
    model = GaussianModel.blob(PRESET.num_pts, generator=torch.Generator().manual_seed(seed))
    # densify every 4 steps (3 per iteration) with a low threshold: the number of Gaussians changes before and after
    # the checkpoint, which falls between two densifications (live statistics)
    model.config = dataclasses.replace(model.config, densification_interval=4, densify_grad_threshold=2e-4)
    if targets is not None:

        def recording(*a, **k):
            out = SIR_TARGETS(*a, **k)
            targets.append((k["t2"], out.clone()))
            return out

        monkeypatch.setattr(sir_module, "sir_targets", recording)

    def progress(i, n):
        if i == stop_after:
            raise _Stop

    ckpt = None if folder is None else Checkpointer(folder, every=every, resume=resume)
    gen = torch.Generator().manual_seed(7 + seed)
    res = run_sir(model, den, PRESET, generator=gen, evaluate=held, progress=progress, checkpoint=ckpt)
    return res, den


def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, monkeypatch):
    full_targets, part_targets = [], []
    full, den_full = _sir(monkeypatch=monkeypatch, targets=full_targets)
    monkeypatch.undo()
    with pytest.raises(_Stop):  # killed after 3 outer iterations; the latest checkpoint holds 2
        _sir(tmp_path, stop_after=3)
    assert [p.name for p in Checkpointer(tmp_path).checkpoints()] == ["iter-00000002.safetensors"]
    with safe_open(str(tmp_path / "iter-00000002.safetensors"), "pt") as fh:
        n_at_2 = json.loads(fh.metadata()["microdreamer.run_state"])["num_primitives"]
    # other seeds on resume: everything must come from the checkpoint
    res, den = _sir(tmp_path, resume=True, monkeypatch=monkeypatch, targets=part_targets, seed=5)
    assert n_at_2 != PRESET.num_pts and len(res.model) != n_at_2  # densified before and after the checkpoint
    for k in full.model.params:
        assert torch.equal(res.model.params[k], full.model.params[k]), k
    assert (den.counter.nfe, den.counter.calls, den.counter.by_phase) == (
        den_full.counter.nfe,
        den_full.counter.calls,
        den_full.counter.by_phase,
    )
    assert (res.t2, res.t1, res.steps) == (full.t2, full.t1, full.steps)
    assert res.history.nfe == full.history.nfe and res.history.error == full.history.error
    assert len(part_targets) == 3  # iterations 3, 4, 5
    for (t_a, a), (t_b, b) in zip(full_targets[2:], part_targets, strict=True):
        assert t_a == t_b and torch.equal(a, b)
    # the last two checkpoints are kept
    assert [p.name for p in Checkpointer(tmp_path).checkpoints()] == [
        "iter-00000004.safetensors",
        "iter-00000005.safetensors",
    ]


def test_sds_resume_is_bit_identical(tmp_path):
    def sds(folder, resume=False, stop_after=None, seed=0):
        den = toy_denoiser()
        model = GaussianModel.blob(40, generator=torch.Generator().manual_seed(seed))

        def progress(i, n):
            if i == stop_after:
                raise _Stop

        ck = None if folder is None else Checkpointer(folder, every=2, resume=resume)
        gen = torch.Generator().manual_seed(3 + seed)
        return run_sds(
            model, den, PRESET, steps=5, anneal=False, generator=gen, progress=progress, checkpoint=ck
        )

    full = sds(None)
    with pytest.raises(_Stop):
        sds(tmp_path, stop_after=3)
    res = sds(tmp_path, resume=True, seed=4)
    assert all(torch.equal(res.model.params[k], full.model.params[k]) for k in full.model.params)


def test_bad_or_missing_checkpoint_and_other_settings_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        _sir(tmp_path, resume=True)
    with pytest.raises(_Stop):
        _sir(tmp_path, stop_after=2)
    den = toy_denoiser()
    other = dataclasses.replace(PRESET, total_steps=6)
    with pytest.raises(CheckpointError, match="total_steps"):
        run_sir(GaussianModel.blob(8), den, other, checkpoint=Checkpointer(tmp_path, resume=True))
    path = Checkpointer(tmp_path).checkpoints()[-1]
    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        _sir(tmp_path, resume=True)
    for bad in ({"keep": 0}, {"every": -1}):  # keep 0 used to keep every checkpoint
        with pytest.raises(ValueError, match="keep ≥ 1"):
            Checkpointer(tmp_path, **bad)


def _run_args(out, *extra):
    return ["run", "--iterations", "3", "--render-size", "10", "--mesh-format", "none", "--gif-frames", "0",
            "--filter-white", "0", "--out", str(out), *extra]  # fmt: skip


def test_cli_checkpoint_resume_and_refusals(tmp_path, capsys):
    out = tmp_path / "o"
    argv = _run_args(out, "--resume")
    i = argv.index("--out")
    del argv[i : i + 2]
    assert_refused_without_writing(
        main, argv, "no checkpoint to resume from", "microdreamer", tmp_path, capsys
    )
    assert main(_run_args(out, "--checkpoint-every", "1", "--json")) == 0
    first = json.loads(capsys.readouterr().out)
    ckdir = out / "checkpoints"
    assert sorted(p.name for p in ckdir.iterdir()) == [
        "iter-00000002.safetensors",
        "iter-00000003.safetensors",
    ]
    # a finished run: the final files exist, so resuming without --overwrite is refused
    assert main(_run_args(out, "--resume")) == 2
    assert "already holds" in capsys.readouterr().err
    before = {p.name: p.read_bytes() for p in ckdir.iterdir()}
    (out / "history.json").unlink()
    (out / "gaussians.ply").unlink()
    # checkpoints of an earlier run are not replaced by a fresh run without --resume/--overwrite
    assert main(_run_args(out, "--checkpoint-every", "1")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume to continue it" in err
    assert {p.name: p.read_bytes() for p in ckdir.iterdir()} == before
    # resuming at the end re-does only the writing, with the same result
    assert main(_run_args(out, "--resume", "--json")) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["resumed_from"] == 3 and first["resumed_from"] == 0
    assert (again["nfe"], again["primitives"], again["heldout_error"]) == (
        first["nfe"],
        first["primitives"],
        first["heldout_error"],
    )
    latest = ckdir / "iter-00000003.safetensors"
    latest.write_bytes(b"garbage")
    assert main(_run_args(out, "--resume", "--overwrite")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated or corrupt" in err


def test_checkpoint_round_trips_every_piece_of_state(tmp_path):
    from microdreamer.checkpoints import STATS
    from microdreamer.loop import Trainer

    den = toy_denoiser()
    model = GaussianModel.blob(PRESET.num_pts, generator=torch.Generator().manual_seed(0))
    model.config = dataclasses.replace(model.config, densification_interval=4, densify_grad_threshold=2e-4)
    gen = torch.Generator().manual_seed(1)
    snap = {}

    def progress(i, n):
        if i == 2:
            opt = model.optimizer
            snap["adam"] = {g["name"]: (g["lr"], dict(opt.state[g["params"][0]])) for g in opt.param_groups}
            snap["stats"] = [getattr(model, k).clone() for k in STATS]
            snap["rng"] = (gen.get_state(), torch.get_rng_state())
            snap["py_np"] = (random.getstate(), np.random.get_state())  # noqa: NPY002
            snap["params"] = {k: v.detach().clone() for k, v in model.params.items()}
            raise _Stop

    random.seed(11)
    np.random.seed(12)  # noqa: NPY002
    with pytest.raises(_Stop):
        run_sir(
            model, den, PRESET, generator=gen, progress=progress, checkpoint=Checkpointer(tmp_path, every=2)
        )
    assert snap["stats"][1].sum() > 0  # live densification statistics at the checkpoint
    torch.manual_seed(123)  # scrambled: the checkpoint must put it back
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002
    fresh = GaussianModel.blob(10)
    tr = Trainer(fresh, PRESET, denoiser=toy_denoiser(), generator=torch.Generator().manual_seed(9))
    settings = {"loop": "sir", "preset": dataclasses.asdict(PRESET), "model": "GaussianModel"}
    assert Checkpointer(tmp_path, resume=True).restore(tr, settings=settings)[0] == 2
    assert all(torch.equal(fresh.params[k], v) for k, v in snap["params"].items())
    assert all(torch.equal(getattr(fresh, k), v) for k, v in zip(STATS, snap["stats"], strict=True))
    opt = tr.optimizer
    assert opt is fresh.optimizer and all(g["params"][0] is fresh.params[g["name"]] for g in opt.param_groups)
    for g in opt.param_groups:
        lr, st = snap["adam"][g["name"]]
        got = opt.state[g["params"][0]]
        assert g["lr"] == lr and got["step"] == st["step"]
        assert torch.equal(got["exp_avg"], st["exp_avg"]) and torch.equal(got["exp_avg_sq"], st["exp_avg_sq"])
    assert torch.equal(tr.generator.get_state(), snap["rng"][0]) and torch.equal(
        torch.get_rng_state(), snap["rng"][1]
    )
    assert (tr.counter.nfe, tr.step) == (den.counter.nfe, 2 * 3)
    (py, (kind, keys, pos, has_gauss, cached)) = snap["py_np"]
    assert random.getstate() == py
    got = np.random.get_state()  # noqa: NPY002
    assert got[0] == kind and np.array_equal(got[1], keys) and got[2:] == (pos, has_gauss, cached)
