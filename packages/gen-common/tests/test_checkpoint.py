import json

import pytest
import torch

from gen_common import (
    CheckpointError,
    CheckpointNotFoundError,
    OfflineError,
    atomic_write_text,
    load_state_dict,
    resolve_pretrained,
    save_state_dict,
)


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_safetensors_round_trip(tmp_path):
    sd = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    save_state_dict(sd, tmp_path / "w.safetensors")
    back = load_state_dict(tmp_path / "w.safetensors")
    assert torch.equal(back["a"], sd["a"]) and torch.equal(back["b"], sd["b"])
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file is left behind"


def test_tied_weights_are_stored_once_and_restored(tmp_path):
    emb = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    sd = {"emb.weight": emb.weight, "head.weight": head.weight, "part": emb.weight[2:5]}
    save_state_dict(sd, tmp_path / "tied.safetensors")
    back = load_state_dict(tmp_path / "tied.safetensors")
    assert torch.equal(back["head.weight"], emb.weight.detach())
    assert torch.equal(back["part"], emb.weight.detach()[2:5])


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="not found"):
        load_state_dict(tmp_path / "nope.safetensors")


def test_truncated_safetensors_is_a_clear_error(tmp_path):
    p = tmp_path / "w.safetensors"
    save_state_dict({"a": torch.randn(64, 64)}, p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_state_dict(p)


def test_pickle_payload_is_refused(tmp_path, capsys):
    p = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(2), "payload": Evil()}, p)
    with pytest.raises(CheckpointError, match="would run code"):
        load_state_dict(p)
    assert "must never run" not in capsys.readouterr().out


def test_legacy_plain_state_dict_loads_weights_only(tmp_path):
    p = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.ones(2, 2)}, "epoch": 3}, p)
    assert torch.equal(load_state_dict(p)["w"], torch.ones(2, 2))


def test_corrupt_legacy_file(tmp_path):
    p = tmp_path / "model.pth"
    p.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_state_dict(p)


def test_unknown_format(tmp_path):
    p = tmp_path / "w.npz"
    p.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        load_state_dict(p)


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="offline"):
        resolve_pretrained("some-org/some-model")


def test_local_paths(tmp_path):
    assert resolve_pretrained(tmp_path) == tmp_path
    with pytest.raises(CheckpointNotFoundError):
        resolve_pretrained(tmp_path / "missing")
    f = atomic_write_text(tmp_path / "file.json", json.dumps({}))
    with pytest.raises(CheckpointError, match="is a file"):
        resolve_pretrained(f)


def test_load_state_dict_accepts_an_indexed_cpu_device(tmp_path):
    # accelerate names the CPU of a multi-process CPU run "cpu:0"; safetensors alone refuses that name
    from gen_common import load_state_dict, save_state_dict

    save_state_dict({"w": torch.arange(3.0)}, tmp_path / "m.safetensors")
    assert torch.equal(
        load_state_dict(tmp_path / "m.safetensors", device=torch.device("cpu", 0))["w"], torch.arange(3.0)
    )
