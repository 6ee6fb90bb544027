"""The network: contract, parity with the official DDiT computation through the converter, save/load, errors."""

from __future__ import annotations

import json
import math

import pytest
import radd
import torch
import torch.nn.functional as F
from radd.convert import (
    convert_checkpoint,
    from_official_state_dict,
    is_official_checkpoint,
    load_official,
    official_config,
    to_official_state_dict,
)
from radd.model import RADD, RADDConfig

from gen_common.checkpoint import CheckpointError, OfflineError, save_state_dict
from gen_common.testing import assert_close

TINY = RADDConfig(vocab_size=11, max_length=16, hidden_size=32, num_layers=2, num_heads=4, dropout=0.0)
OFFICIAL_CFG = {
    "tokens": 11,
    "model": {
        "name": "tiny",
        "type": "ddit_wot",
        "hidden_size": 32,
        "n_heads": 4,
        "n_blocks": 2,
        "length": 16,
        "dropout": 0.02,
        "cond_dim": 128,
        "use_checkpoint": False,
        "dtype": "float16",
    },
    "noise": {"type": "loglinear", "sigma_min": 1e-4, "sigma_max": 20},
}


def official_state_dict(seed: int = 0, V: int = 11, H: int = 32, blocks: int = 2, heads: int = 4) -> dict:
    """Random weights under the official DDiT key names and shapes (V+1 embedding rows and output columns)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    sd = {"vocab_embed.embedding": r(V + 1, H, scale=1.0)}
    hd = H // heads
    sd["rotary_emb.inv_freq"] = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
    for i in range(blocks):
        p = f"blocks.{i}."
        sd |= {
            p + "norm1.weight": 1 + r(H),
            p + "norm1.bias": 1 + r(H),  # the official init has bias = 1
            p + "attn_qkv.weight": r(3 * H, H),
            p + "attn_out.weight": r(H, H),
            p + "norm2.weight": 1 + r(H),
            p + "norm2.bias": r(H),
            p + "mlp.0.weight": r(4 * H, H),
            p + "mlp.0.bias": r(4 * H),
            p + "mlp.2.weight": r(H, 4 * H),
            p + "mlp.2.bias": r(H),
        }
    sd |= {
        "output_layer.norm_final.weight": 1 + r(H),
        "output_layer.norm_final.bias": r(H),
        "output_layer.linear.weight": r(V + 1, H),
        "output_layer.linear.bias": r(V + 1),
    }
    return sd


def official_forward(sd: dict, x: torch.Tensor, heads: int) -> torch.Tensor:
    """The official DDiT computation written out from its description (independent of radd.model):
    pre-LN blocks, packed qkv as (three, heads, d), rotate-half RoPE on q and k, SDPA, tanh-GELU MLP, a final
    LN + linear over V+1 columns whose first V are log-softmaxed."""
    h = sd["vocab_embed.embedding"][x]
    B, L, H = h.shape
    d = H // heads
    freqs = torch.outer(torch.arange(L).float(), sd["rotary_emb.inv_freq"])
    cos, sin = torch.cat([freqs, freqs], -1).cos(), torch.cat([freqs, freqs], -1).sin()

    def rope(t):  # t: (B, L, heads, d)
        rot = torch.cat([-t[..., d // 2 :], t[..., : d // 2]], -1)
        return t * cos[None, :, None] + rot * sin[None, :, None]

    def ln(t, w, b):
        return F.layer_norm(t, [H]) * w + b

    i = 0
    while f"blocks.{i}.norm1.weight" in sd:
        p = f"blocks.{i}."
        a = ln(h, sd[p + "norm1.weight"], sd[p + "norm1.bias"]) @ sd[p + "attn_qkv.weight"].T
        a = a.reshape(B, L, 3, heads, d)
        q, k, v = rope(a[:, :, 0]), rope(a[:, :, 1]), a[:, :, 2]
        att = torch.softmax(torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d), -1)
        o = torch.einsum("bhqk,bkhd->bqhd", att, v).reshape(B, L, H)
        h = h + o @ sd[p + "attn_out.weight"].T
        m = (
            ln(h, sd[p + "norm2.weight"], sd[p + "norm2.bias"]) @ sd[p + "mlp.0.weight"].T
            + sd[p + "mlp.0.bias"]
        )
        h = h + F.gelu(m, approximate="tanh") @ sd[p + "mlp.2.weight"].T + sd[p + "mlp.2.bias"]
        i += 1
    out = ln(h, sd["output_layer.norm_final.weight"], sd["output_layer.norm_final.bias"])
    out = out @ sd["output_layer.linear.weight"].T + sd["output_layer.linear.bias"]
    return out[..., :-1].log_softmax(-1)


def test_contract_shapes_and_normalisation():
    model = RADD(TINY).eval()
    x = torch.randint(0, 12, (3, 16), generator=torch.Generator().manual_seed(0))
    out = model(x)
    assert out.shape == (3, 16, 11)
    assert out.dtype == torch.float32
    assert_close(out.exp().sum(-1), torch.ones(3, 16), atol=1e-5)
    assert model.mask_id == 11
    assert radd.masked_model.resolve_mask_id(model) == 11


def test_top_level_contract():
    """The issue's contract: ``radd.RADD(radd.RADDConfig(...))`` with defaults for every size field."""
    assert radd.RADD is RADD and radd.RADDConfig is RADDConfig
    assert {"RADD", "RADDConfig"} <= set(radd.__all__)
    d = radd.RADDConfig()
    assert (d.vocab_size, d.max_length, d.hidden_size, d.num_layers, d.num_heads) == (
        50257,
        1024,
        768,
        12,
        12,
    )
    model = radd.RADD(radd.RADDConfig(vocab_size=6, max_length=8, hidden_size=16, num_layers=1, num_heads=2))
    assert model(torch.full((2, 8), 6)).shape == (2, 8, 6)


def test_zero_initialised_head_predicts_uniformly():
    out = RADD(TINY)(torch.full((1, 4), 11))
    assert_close(out, torch.full_like(out, -math.log(11)), atol=1e-6)


def test_model_is_bidirectional_and_position_aware():
    torch.manual_seed(0)
    model = RADD(TINY).eval()
    torch.nn.init.normal_(model.head.weight)
    x = torch.full((1, 8), 11)
    y = x.clone()
    y[0, 7] = 3  # a change at the last position moves the prediction at the first
    assert not torch.allclose(model(x)[0, 0], model(y)[0, 0])
    # RoPE: the same token at a different distance changes the prediction at position 7
    z = x.clone()
    z[0, 6] = 3
    assert not torch.allclose(model(y)[0, 0], model(z)[0, 0])


def test_converted_official_weights_match_the_official_computation():
    sd = official_state_dict()
    model = RADD(official_config(OFFICIAL_CFG, sd)).eval()
    model.load_state_dict(from_official_state_dict(sd))
    x = torch.randint(0, 12, (2, 16), generator=torch.Generator().manual_seed(1))
    assert_close(model(x), official_forward(sd, x, heads=4), rtol=1e-4, atol=1e-4)


def test_official_round_trip_and_config_forms():
    model = RADD(TINY).eval()
    torch.nn.init.normal_(model.head.weight)
    sd = to_official_state_dict(model)
    assert sd["output_layer.linear.weight"].shape == (12, 32)
    assert sd["vocab_embed.embedding"].shape == (12, 32)
    back = RADD(TINY)
    back.load_state_dict(from_official_state_dict(sd))
    x = torch.randint(0, 12, (2, 16), generator=torch.Generator().manual_seed(2))
    assert torch.equal(model(x), back.eval()(x))
    assert official_config({"config": OFFICIAL_CFG}, sd) == official_config(OFFICIAL_CFG, sd)
    inferred = official_config(None, sd)  # no config: sizes from shapes, heads from the rotary buffer
    assert (inferred.vocab_size, inferred.hidden_size, inferred.num_layers, inferred.num_heads) == (
        11,
        32,
        2,
        4,
    )
    no_rotary = {k: v for k, v in sd.items() if k != "rotary_emb.inv_freq"}
    assert (
        official_config(None, no_rotary).num_heads == 1
    )  # then 64-dim heads (the released sizes) are assumed
    with pytest.raises(CheckpointError, match="do not belong together"):
        official_config({**OFFICIAL_CFG, "tokens": 50}, sd)
    with pytest.raises(CheckpointError, match="unexpected keys"):
        from_official_state_dict({**sd, "blocks.0.adaLN_modulation.weight": torch.zeros(1)})


@pytest.mark.parametrize("weights_name", ["model.safetensors", "pytorch_model.bin"])
def test_official_folder_loads_and_converts(tmp_path, weights_name):
    src = tmp_path / "official"
    src.mkdir()
    sd = official_state_dict(seed=3)
    (src / "config.json").write_text(json.dumps(OFFICIAL_CFG))
    if weights_name.endswith(".safetensors"):
        save_state_dict(sd, src / weights_name)
    else:
        torch.save(sd, src / weights_name)
    assert is_official_checkpoint(src)
    x = torch.randint(0, 12, (2, 16), generator=torch.Generator().manual_seed(4))
    ref = official_forward(sd, x, heads=4)
    assert_close(RADD.from_pretrained(src)(x), ref, rtol=1e-4, atol=1e-4)  # converted on the fly
    dst = convert_checkpoint(src, tmp_path / "converted")
    assert not is_official_checkpoint(dst)
    assert_close(RADD.from_pretrained(dst)(x), ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_checkpoint(src, dst)
    assert_close(load_official(src / weights_name)(x), ref, rtol=1e-4, atol=1e-4)  # a bare weights file


def test_official_training_checkpoint_loads_its_ema(tmp_path):
    """``checkpoint.pth`` of an official run: {model, ema: {shadow_params in parameter order}, optimizer, step}."""
    raw = official_state_dict(seed=5)
    ema_sd = official_state_dict(seed=6)
    names = [
        k for k in raw if k != "rotary_emb.inv_freq"
    ]  # parameter order = state-dict order minus the buffer
    ckpt = {
        "model": raw,
        "ema": {"decay": 0.9999, "num_updates": 3, "shadow_params": [ema_sd[k] for k in names]},
        "optimizer": {"state": {}, "param_groups": [{"lr": 3e-4, "params": list(range(len(names)))}]},
        "step": 3,
    }
    torch.save(ckpt, tmp_path / "checkpoint.pth")
    x = torch.randint(0, 12, (2, 16), generator=torch.Generator().manual_seed(7))
    assert_close(
        load_official(tmp_path / "checkpoint.pth")(x), official_forward(ema_sd, x, 4), rtol=1e-4, atol=1e-4
    )
    raw_model = load_official(tmp_path / "checkpoint.pth", ema=False)
    assert_close(raw_model(x), official_forward(raw, x, 4), rtol=1e-4, atol=1e-4)
    ckpt["ema"]["shadow_params"] = ckpt["ema"]["shadow_params"][:-1]
    torch.save(ckpt, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="line up"):
        load_official(tmp_path / "bad.pth")


def test_converting_a_radd_folder_is_a_clear_error(tmp_path):
    RADD(TINY).save_pretrained(tmp_path / "ours")
    with pytest.raises(CheckpointError, match="loads directly"):
        convert_checkpoint(tmp_path / "ours", tmp_path / "out")
    with pytest.raises(CheckpointError, match="not an official RADD state dict"):
        load_official(tmp_path / "ours" / "model.safetensors")


def test_save_and_load_round_trip(tmp_path):
    model = RADD(TINY).eval()
    torch.nn.init.normal_(model.head.weight)
    model.save_pretrained(tmp_path / "m")
    loaded = RADD.from_pretrained(tmp_path / "m")
    assert loaded.config == TINY
    x = torch.randint(0, 12, (2, 16), generator=torch.Generator().manual_seed(0))
    assert torch.equal(model(x), loaded(x))
    with pytest.raises(FileExistsError):
        model.save_pretrained(tmp_path / "m")


def test_bad_inputs_and_checkpoints(tmp_path):
    model = RADD(TINY).eval()
    with pytest.raises(ValueError, match="outside"):
        model(torch.full((1, 4), 12))
    with pytest.raises(ValueError, match="max_length"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        model(torch.zeros(1, 4))
    # a checkpoint whose config says one size and whose weights are another
    model.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**cfg, "hidden_size": 64}))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        RADD.from_pretrained(tmp_path / "m")
    # truncated weights
    model.save_pretrained(tmp_path / "c")
    w = tmp_path / "c" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        RADD.from_pretrained(tmp_path / "c")
    with pytest.raises(OfflineError, match="offline"):
        RADD.from_pretrained("JingyangOu/radd-t-dce")
    with pytest.raises(ValueError, match="divisible"):
        RADDConfig(hidden_size=30, num_heads=4)


def test_generic_functions_accept_the_model():
    model = RADD(TINY).eval()
    x = torch.randint(0, 11, (2, 16), generator=torch.Generator().manual_seed(0))
    nll = radd.estimate_nll(model, x, 4, "k", torch.Generator().manual_seed(0))
    assert_close(nll, torch.full((2,), 16 * math.log(11)), rtol=1e-5)  # uniform predictions
    a = radd.sample(model, 3, 16, 8, generator=torch.Generator().manual_seed(0))
    b = radd.sample(model, 3, 16, 8, cache=False, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.tokens, b.tokens)


def test_dropout_is_off_while_sampling_and_restored():
    model = RADD(RADDConfig(**{**TINY.__dict__, "dropout": 0.5})).train()
    torch.nn.init.normal_(model.head.weight)
    a = radd.sample(model, 4, 16, 8, generator=torch.Generator().manual_seed(0))
    b = radd.sample(model, 4, 16, 8, cache=False, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.tokens, b.tokens)
    assert model.training


def test_official_run_directory_converts_as_the_official_loader_reads_it(tmp_path, capsys):
    """``RUN_DIR/.hydra/config.yaml`` + ``RUN_DIR/checkpoints-meta/checkpoint.pth`` (EMA weights), the layout the
    official ``load_model_local`` reads; `radd convert RUN_DIR DST`."""
    import yaml
    from radd.cli import main

    raw, ema_sd = official_state_dict(seed=8), official_state_dict(seed=9)
    names = [k for k in raw if k != "rotary_emb.inv_freq"]
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    composed = {
        **OFFICIAL_CFG,
        "training": {"ema": 0.9999, "loss_type": "t_DCE"},
        "noise": {"type": "loglinear"},
    }
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(composed))
    torch.save({"model": raw, "step": 1}, run / "checkpoints" / "checkpoint_1.pth")
    with pytest.raises(CheckpointError, match=r"checkpoint_1\.pth"):
        load_official(run)
    ckpt = {"model": raw, "ema": {"decay": 0.9999, "shadow_params": [ema_sd[k] for k in names]}, "step": 3}
    (run / "checkpoints-meta").mkdir()
    torch.save(ckpt, run / "checkpoints-meta" / "checkpoint.pth")
    x = torch.randint(0, 12, (2, 16), generator=torch.Generator().manual_seed(1))
    ref = official_forward(ema_sd, x, 4)
    assert_close(load_official(run)(x), ref, rtol=1e-4, atol=1e-4)
    assert main(["convert", str(run), str(tmp_path / "dst"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["config"]["num_layers"] == OFFICIAL_CFG["model"]["n_blocks"]
    assert_close(RADD.from_pretrained(tmp_path / "dst")(x), ref, rtol=1e-4, atol=1e-4)
    (run / ".hydra" / "config.yaml").write_text("tokens: [unclosed")
    with pytest.raises(CheckpointError, match="not valid YAML"):
        load_official(run)
