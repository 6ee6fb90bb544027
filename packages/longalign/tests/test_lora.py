from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from longalign.lora import (
    LoraSpec,
    add_lora,
    load_lora,
    lora_target_modules,
    merge_release_lora,
    release_to_peft,
    save_lora,
    write_lora_file,
)

OFFICIAL = Path(os.environ.get("LONGALIGN_OFFICIAL_REPO", "/work/.mirror/luping-liu+LongAlign/repo"))


def fresh_pipe():
    from longalign.toys import tiny_sd_pipeline

    return tiny_sd_pipeline(seed=0)


def unet_out(unet, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, ehs = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 12, 32, generator=g)
    with torch.no_grad():
        return unet(x, 500, ehs).sample


def randomise_up(unet, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in unet.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def test_targets_follow_the_release(sd_pipe):
    names = lora_target_modules(sd_pipe.unet)
    assert names[:3] == [
        "down_blocks.0.resnets.0.conv1",
        "down_blocks.0.resnets.0.time_emb_proj",
        "down_blocks.0.resnets.0.conv2",
    ]
    assert any(n.endswith("attn2.to_out.0") for n in names)
    assert any(n.endswith("ff.net.0.proj") for n in names)  # GEGLU's Linear
    assert not any(n.endswith("ff.net.2") or "proj_in" in n or "downsamplers" in n for n in names)


def test_only_lora_trainable_release_init():
    unet = fresh_pipe().unet
    params = add_lora(unet, LoraSpec(rank=4))
    trainable = {id(p) for p in unet.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in params} and len(params) == 2 * len(lora_target_modules(unet))
    a = [p for n, p in unet.named_parameters() if "lora_A" in n]
    b = [p for n, p in unet.named_parameters() if "lora_B" in n]
    assert all(float(p.detach().abs().max()) == 0 for p in b)
    allA = torch.cat([p.detach().flatten() for p in a])
    assert abs(float(allA.std()) - 1 / 4) < 0.02  # down ~ N(0, std 1/r)


def test_dropout_on_output_like_the_release():
    unet = fresh_pipe().unet
    add_lora(unet, LoraSpec(rank=4, dropout=0.5))
    randomise_up(unet)
    m = unet.get_submodule(lora_target_modules(unet)[1])  # a Linear (time_emb_proj)
    x = torch.randn(3, m.base_layer.in_features)
    with torch.no_grad():
        base = m.base_layer(x)
        m.eval()
        d_eval = m(x) - base
        m.train()
        torch.manual_seed(0)
        d_train = m(x) - base
    ratio = d_train / d_eval
    ok = torch.isclose(ratio, torch.zeros_like(ratio), atol=1e-4) | torch.isclose(
        ratio, torch.full_like(ratio, 2.0), atol=1e-3
    )
    assert bool(ok.all()) and 0 < int((ratio.abs() < 1e-4).sum()) < ratio.numel()


def test_save_reload_exact_with_dropout_and_alpha(tmp_path):
    pipe = fresh_pipe()
    add_lora(pipe.unet, LoraSpec(rank=4, alpha=8, dropout=0.1))
    randomise_up(pipe.unet)
    pipe.unet.eval()
    ref = unet_out(pipe.unet)
    path = save_lora(pipe.unet, tmp_path / "lora")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        assert len(list(fh.keys())) == 2 * len(lora_target_modules(pipe.unet))
    other = fresh_pipe()
    other.unet.train()  # the trap: a loaded LoRA's dropout stays on in training mode
    load_lora(other, tmp_path / "lora")
    assert not other.unet.training
    torch.testing.assert_close(unet_out(other.unet), ref, atol=1e-5, rtol=0)
    base = unet_out(fresh_pipe().unet)
    assert (ref - base).abs().max() > 1e-3  # the LoRA matters
    with pytest.raises(FileExistsError):
        save_lora(pipe.unet, tmp_path / "lora")


def test_load_rejects_a_lora_for_another_unet(tmp_path):
    from gen_common.testing.diffusers_tiny import tiny_unet

    big = tiny_unet(cross_attention_dim=48)
    add_lora(big, LoraSpec(rank=4))
    save_lora(big, tmp_path)
    with pytest.raises(ValueError, match="does not fit"):
        load_lora(fresh_pipe(), tmp_path)


def fake_release_list(unet, rank=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for name in lora_target_modules(unet):
        w = unet.get_submodule(name).weight
        if w.ndim == 2:
            up, down = torch.randn(w.shape[0], rank, generator=g), torch.randn(rank, w.shape[1], generator=g)
        else:
            up = torch.randn(w.shape[0], rank, 1, 1, generator=g)
            down = torch.randn(rank, w.shape[1], *w.shape[2:], generator=g)
        out += [(up * 0.02).half(), (down * 0.1).half()]
    return out


def test_release_converter_merge_and_peft_agree(tmp_path):
    pipe = fresh_pipe()
    tensors = fake_release_list(pipe.unet)
    sd, cfg = release_to_peft(pipe.unet, tensors)
    write_lora_file(tmp_path / "lora.safetensors", sd, cfg)
    load_lora(pipe, tmp_path / "lora.safetensors")
    merged = merge_release_lora(fresh_pipe().unet, tensors)
    torch.testing.assert_close(unet_out(pipe.unet), unet_out(merged), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="up/down pairs"):
        merge_release_lora(fresh_pipe().unet, tensors[:-2])


def _official_lora_module(tmp_path):
    if not (OFFICIAL / "HEAD").exists() and not (OFFICIAL / ".git").exists():
        pytest.skip(f"official LongAlign checkout not found at {OFFICIAL} (set LONGALIGN_OFFICIAL_REPO)")
    src = subprocess.run(
        ["git", "-C", str(OFFICIAL), "show", "HEAD:modules/lora.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (tmp_path / "official_lora.py").write_text(src)
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib

        return importlib.import_module("official_lora")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("official_lora", None)


def test_converter_matches_official_monkeypatch(tmp_path):
    official = _official_lora_module(tmp_path)
    targets = {"ResnetBlock2D", "CrossAttention", "Attention", "GEGLU"}
    ref_unet = copy.deepcopy(fresh_pipe().unet)
    official.inject_trainable_lora_extended(ref_unet, target_replace_module=targets, r=4)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for n, p in ref_unet.named_parameters():
            if "lora_up" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    tensors = official.save_lora_weight(ref_unet, target_replace_module=targets, return_weights=True)
    ref_unet.eval()
    ref = unet_out(ref_unet)
    # the release's own reload + merge, as sample.py does it
    merged_ref = fresh_pipe().unet
    official.monkeypatch_or_replace_lora_extended(
        merged_ref, list(tensors), r=4, target_replace_module=targets
    )
    official.collapse_lora(merged_ref, targets)
    official.monkeypatch_remove_lora(merged_ref)
    ours = merge_release_lora(fresh_pipe().unet, tensors)
    torch.testing.assert_close(unet_out(ours), unet_out(merged_ref), atol=1e-5, rtol=1e-5)
    pipe = fresh_pipe()
    sd, cfg = release_to_peft(pipe.unet, tensors)
    write_lora_file(tmp_path / "l.safetensors", sd, cfg)
    load_lora(pipe, tmp_path / "l.safetensors")
    # the release stores fp16: the live reference differs from its own reload by that rounding only
    torch.testing.assert_close(unet_out(pipe.unet), unet_out(merged_ref), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(unet_out(pipe.unet), ref, atol=1e-3, rtol=0)
