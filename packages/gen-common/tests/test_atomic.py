"""Atomic writes: an interrupted write leaves the previous file intact and no temporary file behind."""

import pytest
import torch

import gen_common.checkpoint as checkpoint_mod
from gen_common import atomic_path, atomic_write, atomic_write_json, load_state_dict, save_state_dict


class Boom(Exception):
    pass


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_interrupted_text_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("old")

    def interrupted():
        with atomic_write(target) as fh:
            fh.write("new, but only half")
            fh.flush()
            raise Boom

    with pytest.raises(Boom):
        interrupted()
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []
    with atomic_write(target) as fh:
        fh.write("new")
    assert target.read_text() == "new"
    assert _leftovers(tmp_path) == []


def test_atomic_path_renames_only_on_success(tmp_path):
    target = tmp_path / "sub" / "blob.bin"

    def interrupted():
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            assert not target.exists(), "the target appears only after the block succeeds"
            raise Boom

    with pytest.raises(Boom):
        interrupted()
    assert not target.exists() and _leftovers(target.parent) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    atomic_write_json(tmp_path / "r.json", {"x": torch.tensor(1.5)})
    assert (tmp_path / "r.json").read_text().strip() == '{\n  "x": 1.5\n}'


def test_crash_inside_safetensors_writer_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    p = tmp_path / "w.safetensors"
    save_state_dict({"a": torch.ones(3)}, p)

    def dying_writer(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"\x10\x00\x00")  # the first bytes of a file, then the process "dies"
        raise Boom

    monkeypatch.setattr(checkpoint_mod, "save_file", dying_writer)
    with pytest.raises(Boom):
        save_state_dict({"a": torch.zeros(3)}, p)
    assert torch.equal(load_state_dict(p)["a"], torch.ones(3))
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path, monkeypatch, umask):
    import stat

    import gen_common.atomic as atomic_mod

    # the process umask is read once and cached; pretend it is `umask` (the real one is left alone)
    monkeypatch.setattr(atomic_mod, "_umask", lambda: umask)
    target = tmp_path / "weights.json"
    atomic_write_json(target, {"a": 1})
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    with atomic_path(tmp_path / "w.bin") as tmp:
        tmp.write_bytes(b"x")
    assert stat.S_IMODE((tmp_path / "w.bin").stat().st_mode) == 0o666 & ~umask


def test_umask_is_read_without_changing_it(tmp_path):
    import os
    import stat
    import subprocess
    import sys

    # A fresh process with umask 027: the mode of a written file equals that of a plain open(), and the umask survives.
    code = (
        "import os, stat, sys\n"
        "from gen_common import atomic_write_text\n"
        "d = sys.argv[1]\n"
        "atomic_write_text(os.path.join(d, 'a.txt'), 'x')\n"
        "open(os.path.join(d, 'b.txt'), 'w').close()\n"
        "m = os.umask(0); print(oct(m))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(0o027),
        check=True,
    )
    assert proc.stdout.strip() == "0o27"
    a, b = (stat.S_IMODE((tmp_path / n).stat().st_mode) for n in ("a.txt", "b.txt"))
    assert a == b == 0o640
