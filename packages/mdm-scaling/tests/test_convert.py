"""The SMDM converter against a from-scratch forward pass in the official layout (lit-gpt key names, per-group
packed q/k/v, xformers SwiGLU w1/w2/w3, GPT-NeoX rotate-half RoPE)."""

import math

import pytest
import torch
import torch.nn.functional as F
from mdm_scaling.config import ModelConfig
from mdm_scaling.convert import (
    convert_smdm_state_dict,
    infer_smdm_config,
    load_smdm_checkpoint,
    to_smdm_state_dict,
)
from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM

from gen_common.checkpoint import CheckpointError, save_state_dict
from gen_common.testing import assert_close


def official_state_dict(V, n_layer, n_head, groups, d, inter, mdm, seed=0):
    g = torch.Generator().manual_seed(seed)
    hs = d // n_head

    def r(*shape):
        return 0.3 * torch.randn(*shape, generator=g)

    sd = {
        "lm_head.weight": r(V, d),
        "transformer.wte.weight": r(V + int(mdm), d),
        "transformer.ln_f.weight": 1 + r(d),
    }
    for i in range(n_layer):
        p = f"transformer.h.{i}."
        sd[p + "norm_1.weight"] = 1 + r(d)
        sd[p + "norm_2.weight"] = 1 + r(d)
        sd[p + "attn.attn.weight"] = r((n_head + 2 * groups) * hs, d)
        sd[p + "attn.proj.weight"] = r(d, d)
        sd[p + "mlp.swiglu.w1.weight"] = r(inter, d)
        sd[p + "mlp.swiglu.w2.weight"] = r(inter, d)
        sd[p + "mlp.swiglu.w3.weight"] = r(d, inter)
    return sd


def official_forward(sd, x, n_head, groups, causal, rope_dtype=None):
    """The official TransEncoder/GPT forward written out independently of this package's modules.

    ``rope_dtype=torch.bfloat16``: the cos/sin cache as the official ``build_rope_cache`` makes it (float32 angles,
    rounded to bf16); None: exact angles."""
    wte = sd["transformer.wte.weight"]
    d = wte.shape[1]
    hs, qpk = d // n_head, n_head // groups
    B, T = x.shape
    theta = 1.0 / (10000 ** (torch.arange(0, hs, 2).double() / hs))
    ang = torch.outer(torch.arange(T).double(), theta)
    cos, sin = ang.cos().float(), ang.sin().float()
    if rope_dtype is not None:
        theta32 = 1.0 / (10000 ** (torch.arange(0, hs, 2) / hs))  # float32, as lit-gpt
        ang32 = torch.outer(torch.arange(T).float(), theta32)
        cos, sin = ang32.cos().to(rope_dtype).float(), ang32.sin().to(rope_dtype).float()

    def rope(t):  # (B, T, h, hs), rotate halves
        t1, t2 = t[..., : hs // 2], t[..., hs // 2 :]
        c, s = cos[None, :, None], sin[None, :, None]
        return torch.cat([t1 * c - t2 * s, t2 * c + t1 * s], -1)

    def rms(t, w):
        return t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-5) * w

    h = wte[x]
    n_layer = len({k.split(".")[2] for k in sd if k.startswith("transformer.h.")})
    for i in range(n_layer):
        p = f"transformer.h.{i}."
        a = rms(h, sd[p + "norm_1.weight"])
        qkv = (a @ sd[p + "attn.attn.weight"].T).view(B, T, groups, qpk + 2, hs)
        q = rope(qkv[:, :, :, :qpk].reshape(B, T, n_head, hs))
        k = rope(qkv[:, :, :, qpk].reshape(B, T, groups, hs)).repeat_interleave(qpk, dim=2)
        v = qkv[:, :, :, qpk + 1].reshape(B, T, groups, hs).repeat_interleave(qpk, dim=2)
        att = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hs)
        if causal:
            att = att.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        y = torch.einsum("bhqk,bkhd->bqhd", att.softmax(-1), v).reshape(B, T, d)
        h = h + y @ sd[p + "attn.proj.weight"].T
        m = rms(h, sd[p + "norm_2.weight"])
        ff = F.silu(m @ sd[p + "mlp.swiglu.w1.weight"].T) * (m @ sd[p + "mlp.swiglu.w2.weight"].T)
        h = h + ff @ sd[p + "mlp.swiglu.w3.weight"].T
    return rms(h, sd["transformer.ln_f.weight"]) @ sd["lm_head.weight"].T


@pytest.mark.parametrize(
    ("mdm", "n_head", "groups"), [(True, 4, 4), (False, 4, 4), (True, 4, 2), (False, 4, 1)]
)
def test_converted_model_matches_official_forward(mdm, n_head, groups):
    sd = official_state_dict(13, 2, n_head, groups, 16, 40, mdm)
    cfg, arch = infer_smdm_config(sd, n_head=n_head)
    assert arch == ("mdm" if mdm else "arm")
    assert (cfg.vocab_size, cfg.n_layer, cfg.n_embd, cfg.intermediate_size, cfg.groups) == (
        13,
        2,
        16,
        40,
        groups,
    )
    model = (MaskedDiffusionLM if mdm else AutoregressiveLM)(cfg.replace(block_size=64))
    model.load_state_dict(convert_smdm_state_dict(sd, cfg))
    x = torch.randint(0, 13 + int(mdm), (2, 9), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert_close(model(x), official_forward(sd, x, n_head, groups, causal=not mdm), rtol=1e-4, atol=1e-4)
    back = to_smdm_state_dict(model)
    assert set(back) == set(sd)
    assert all(torch.equal(back[k], sd[k]) for k in sd)


def test_load_checkpoint_file_with_prefix_and_preset(tmp_path):
    # 6M geometry at a toy vocabulary: the head count (4) is read off the matching paper preset.
    sd = official_state_dict(7, 6, 4, 4, 256, 1024, True)
    save_state_dict({"_forward_module." + k: v for k, v in sd.items()}, tmp_path / "ckpt.safetensors")
    m = load_smdm_checkpoint(tmp_path / "ckpt.safetensors", block_size=16)
    assert type(m) is MaskedDiffusionLM
    assert (m.mask_id, m.config.vocab_size, m.config.block_size) == (7, 7, 16)
    assert m.config.n_head == 4
    assert m.config.n_layer == 6
    x = torch.randint(0, 8, (1, 5))
    with torch.no_grad():
        assert_close(m(x), official_forward(sd, x, 4, 4, causal=False), rtol=1e-3, atol=1e-3)


def test_unknown_geometry_needs_heads_and_bad_dicts_error():
    sd = official_state_dict(7, 1, 2, 2, 12, 20, True)
    with pytest.raises(CheckpointError, match="n_head"):
        infer_smdm_config(sd)
    with pytest.raises(CheckpointError, match="missing"):
        infer_smdm_config({"foo": torch.zeros(1)})
    bad = dict(sd)
    bad["transformer.wte.weight"] = torch.zeros(30, 12)
    with pytest.raises(CheckpointError, match="rows"):
        infer_smdm_config(bad, n_head=2)
    assert infer_smdm_config(sd, n_head=2)[0] == ModelConfig(
        vocab_size=7, n_layer=1, n_head=2, n_embd=12, intermediate_size=20
    )


@pytest.mark.parametrize("mdm", [True, False])
def test_bf16_rope_cache_reproduces_official_logits(mdm, tmp_path):
    # Long positions, where bf16 rounding of cos/sin moves the rotation most: 200 positions, head size 8.
    sd = official_state_dict(11, 2, 2, 2, 16, 24, mdm, seed=3)
    save_state_dict(sd, tmp_path / "ckpt.safetensors")
    x = torch.randint(0, 11, (2, 200), generator=torch.Generator().manual_seed(1))
    ref = official_forward(sd, x, 2, 2, causal=not mdm, rope_dtype=torch.bfloat16)
    exact = load_smdm_checkpoint(tmp_path / "ckpt.safetensors", n_head=2, block_size=256)
    official = load_smdm_checkpoint(
        tmp_path / "ckpt.safetensors", n_head=2, block_size=256, rope_cache="bfloat16"
    )
    assert official.config.rope_cache == "bfloat16"
    with torch.no_grad():
        got, got_exact = official(x), exact(x)
    assert_close(got, ref, rtol=1e-5, atol=1e-5)  # round-off only
    assert (got_exact - ref).abs().max() > 1e-3  # the exact table does not reproduce the official logits
    assert (got_exact - ref).abs().max() > 100 * (got - ref).abs().max()
    # The switch is reversible on a loaded model, and survives save_pretrained / from_pretrained.
    with torch.no_grad():
        assert torch.equal(exact.set_rope_cache("bfloat16")(x), got)
    official.save_pretrained(tmp_path / "m")
    from mdm_scaling.model import load_model

    back = load_model(tmp_path / "m")
    assert back.config.rope_cache == "bfloat16"
    with torch.no_grad():
        assert torch.equal(back(x), got)
