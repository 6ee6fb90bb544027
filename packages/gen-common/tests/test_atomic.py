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


def test_written_files_follow_the_umask(tmp_path):
    import os
    import stat

    from gen_common.atomic import atomic_write_text

    old = os.umask(0o022)
    try:
        mode = stat.S_IMODE(atomic_write_text(tmp_path / "a.txt", "x").stat().st_mode)
        assert mode == 0o644  # readable by others, as open() would make it (mkstemp alone gives 0600)
        os.umask(0o077)
        assert stat.S_IMODE(atomic_write_text(tmp_path / "b.txt", "x").stat().st_mode) == 0o600
    finally:
        os.umask(old)
