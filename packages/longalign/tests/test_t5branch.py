from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import torch
from longalign.t5branch import T5Branch, TextAdapter

from .test_lora import OFFICIAL


def load_official_adapters(tmp_path):
    """The fetched checkout's ``modules/adapters.py``, imported from a temporary copy."""
    if not (OFFICIAL / "HEAD").exists() and not (OFFICIAL / ".git").exists():
        pytest.skip("official LongAlign checkout not found")
    src = subprocess.run(
        ["git", "-C", str(OFFICIAL), "show", "HEAD:modules/adapters.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (tmp_path / "official_adapters.py").write_text(src)
    sys.path.insert(0, str(tmp_path))
    sys.modules.pop("official_adapters", None)
    try:
        return importlib.import_module("official_adapters")
    finally:
        sys.path.remove(str(tmp_path))


def test_adapter_loads_the_release_layout(tmp_path):
    official_adapters = load_official_adapters(tmp_path)  # the fetched checkout's file
    torch.manual_seed(0)
    ref = official_adapters.TextAdapter(16, 24, 8).eval()
    ref.save_pretrained(tmp_path / "adapter")  # the released folder layout
    ours = TextAdapter.from_pretrained(tmp_path / "adapter").eval()
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(ours(x), ref(x).sample)
    sys.modules.pop("official_adapters", None)


def test_saved_adapter_loads_in_the_release_code(tmp_path):
    """What `train-align` writes (`save_adapter`) is what the release's sample.py loads (its own TextAdapter)."""
    from longalign.t5branch import save_adapter

    official = load_official_adapters(tmp_path)
    torch.manual_seed(1)
    ours = TextAdapter(16, 24, 8).eval()
    save_adapter(ours, tmp_path / "s100_adapter")
    ref = official.TextAdapter.from_pretrained(tmp_path / "s100_adapter", use_safetensors=True).eval()
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(ref(x).sample, ours(x), atol=0, rtol=0)
    sys.modules.pop("official_adapters", None)


def test_branch_concatenates_after_the_clip_rows(sd_pipe):
    from longalign import SegmentEncoder

    class Tok:  # a stand-in tokenizer: T5's sentencepiece files are not shipped offline
        def __call__(self, texts, max_length, padding, truncation, return_tensors):
            ids = torch.zeros(len(texts), max_length, dtype=torch.long)
            for i, t in enumerate(texts):
                ids[i, : min(len(t), max_length)] = torch.tensor([ord(c) % 50 for c in t[:max_length]])
            return type("T", (), {"input_ids": ids})()

    emb = torch.nn.Embedding(50, 12)
    adapter = TextAdapter(12, 20, 32).eval()
    t5 = type("E", (torch.nn.Module,), {"forward": lambda self, ids: (emb(ids),)})()
    t5.register_parameter("w", torch.nn.Parameter(torch.zeros(1)))  # gives the stand-in a device
    branch = T5Branch(Tok(), t5, adapter, max_length=30)
    enc = SegmentEncoder.from_pipe(sd_pipe, max_length=40, branch=branch)
    out = enc(["A cat. A dog."])
    assert out.embeds.shape == (1, 70, 32)
    plain = SegmentEncoder.from_pipe(sd_pipe, max_length=40)(["A cat. A dog."])
    torch.testing.assert_close(out.embeds[:, :40], plain.embeds)
    with torch.no_grad():
        torch.testing.assert_close(
            out.embeds[:, 40:], adapter(emb(Tok()(["A cat. A dog."], 30, 0, 0, 0).input_ids))
        )


def test_save_adapter_writes_float32_keeps_the_callers_dtype_and_refuses_to_overwrite(tmp_path, monkeypatch):
    from longalign.t5branch import save_adapter
    from safetensors.torch import load_file

    torch.manual_seed(0)
    ad = TextAdapter(16, 24, 8).to(torch.bfloat16)
    ref = {k: v.float() for k, v in ad.state_dict().items()}
    save_adapter(ad, tmp_path / "a")
    saved = load_file(tmp_path / "a" / "diffusion_pytorch_model.safetensors")
    assert set(saved) == set(ref)
    for k, v in saved.items():
        assert v.dtype == torch.float32 and torch.equal(v, ref[k]), k
    assert next(ad.parameters()).dtype == torch.bfloat16
    with pytest.raises(FileExistsError):
        save_adapter(ad, tmp_path / "a")
    # a failed write leaves the caller's adapter as it was (dtype included) and no temporary folder behind
    monkeypatch.setattr(
        TextAdapter, "save_pretrained", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full"))
    )
    with pytest.raises(OSError):
        save_adapter(ad, tmp_path / "b")
    assert next(ad.parameters()).dtype == torch.bfloat16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
