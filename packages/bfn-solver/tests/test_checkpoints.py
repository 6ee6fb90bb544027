"""The nnaisense networks load official-format state dicts: key names and shapes written out independently from
the official architecture (CIFAR-10 UNetVDM and text8 GPT), at tiny size, saved as `.pt` and read with
weights_only=True."""

import pytest
import torch
from bfn_solver.checkpoints import (
    BFNImageConfig,
    BFNImageModel,
    BFNTextConfig,
    BFNTextModel,
    decode_text8,
    encode_text8,
    load_nnaisense_checkpoint,
)
from bfn_solver.sampling import sample_continuous, sample_discrete

from gen_common.checkpoint import CheckpointError

E, NB, C, S = 8, 2, 3, 4  # embedding_dim, n_blocks, channels, image size


def _resnet(prefix, ch_in, e=E):
    keys = {
        f"{prefix}.net1.0.weight": (ch_in,), f"{prefix}.net1.0.bias": (ch_in,),
        f"{prefix}.net1.2.weight": (e, ch_in, 3, 3), f"{prefix}.net1.2.bias": (e,),
        f"{prefix}.cond_proj.weight": (e, 4 * e),
        f"{prefix}.net2.0.weight": (e,), f"{prefix}.net2.0.bias": (e,),
        f"{prefix}.net2.3.weight": (e, e, 3, 3), f"{prefix}.net2.3.bias": (e,),
    }  # fmt: skip
    if ch_in != e:
        keys |= {f"{prefix}.skip_conv.weight": (e, ch_in, 1, 1), f"{prefix}.skip_conv.bias": (e,)}
    return keys


def official_unet_keys():
    keys = {
        "net.input_adapter.pos_feats": (S * S, 4 * 64 + 2),
        "net.output_adapter.output_projection.weight": (C, C + E),
        "net.output_adapter.output_projection.bias": (C,),
        "net.embed_conditioning.0.weight": (4 * E, E), "net.embed_conditioning.0.bias": (4 * E,),
        "net.embed_conditioning.2.weight": (4 * E, 4 * E), "net.embed_conditioning.2.bias": (4 * E,),
        "net.conv_in.weight": (E, 5 * C, 3, 3), "net.conv_in.bias": (E,),
        "net.mid_attn_block.layers.0.weight": (E,), "net.mid_attn_block.layers.0.bias": (E,),
        "net.mid_attn_block.layers.1.weight": (3 * E, E, 1, 1), "net.mid_attn_block.layers.1.bias": (3 * E,),
        "net.mid_attn_block.layers.3.weight": (E, E, 1, 1), "net.mid_attn_block.layers.3.bias": (E,),
        "net.conv_out.0.weight": (E,), "net.conv_out.0.bias": (E,),
        "net.conv_out.2.weight": (E, E, 3, 3), "net.conv_out.2.bias": (E,),
    }  # fmt: skip
    for i in range(NB):
        keys |= _resnet(f"net.down_blocks.{i}.resnet_block", E)
    keys |= _resnet("net.mid_resnet_block_1", E) | _resnet("net.mid_resnet_block_2", E)
    for i in range(NB + 1):
        keys |= _resnet(f"net.up_blocks.{i}.resnet_block", 2 * E)
    return keys


def official_gpt_keys(v=27, l=16, d=16, layers=2):
    keys = {
        "net.input_adapter.pos_embedding": (l, d),
        "net.input_adapter.inp_embedding.weight": (d, v), "net.input_adapter.inp_embedding.bias": (d,),
        "net.input_adapter.t_embedding.weight": (d, 1), "net.input_adapter.t_embedding.bias": (d,),
        "net.transformer.ln_f.weight": (d,), "net.transformer.ln_f.bias": (d,),
        "net.lm_head.weight": (v, 2 * d), "net.lm_head.bias": (v,),
    }  # fmt: skip
    for i in range(layers):
        p = f"net.transformer.h.{i}"
        keys |= {
            f"{p}.ln_1.weight": (d,), f"{p}.ln_1.bias": (d,), f"{p}.ln_2.weight": (d,), f"{p}.ln_2.bias": (d,),
            f"{p}.attn.c_attn.weight": (3 * d, d), f"{p}.attn.c_attn.bias": (3 * d,),
            f"{p}.attn.c_proj.weight": (d, d), f"{p}.attn.c_proj.bias": (d,),
            f"{p}.mlp.c_fc.weight": (4 * d, d), f"{p}.mlp.c_fc.bias": (4 * d,),
            f"{p}.mlp.c_proj.weight": (d, 4 * d), f"{p}.mlp.c_proj.bias": (d,),
        }  # fmt: skip
    return keys


def _fake(keys, path, seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = {k: 0.1 * torch.randn(shape, generator=g) for k, shape in keys.items()}
    torch.save(sd, path)
    return sd


TINY_IMAGE = BFNImageConfig(embedding_dim=E, n_blocks=NB, norm_groups=4, image_size=S, image_channels=C)
TINY_TEXT = BFNTextConfig(seq_len=16, n_layer=2, n_head=2, n_embd=16)


def test_our_networks_have_exactly_the_official_keys():
    ours = {k: tuple(v.shape) for k, v in BFNImageModel(TINY_IMAGE).state_dict().items()}
    assert ours == official_unet_keys()
    ours = {k: tuple(v.shape) for k, v in BFNTextModel(TINY_TEXT).state_dict().items()}
    assert ours == official_gpt_keys()


def test_official_format_checkpoints_load_and_sample(tmp_path):
    sd = _fake(official_unet_keys(), tmp_path / "cifar10_256c_ema.pt")
    img = load_nnaisense_checkpoint(tmp_path / "cifar10_256c_ema.pt", "cifar10", config=TINY_IMAGE)
    assert torch.equal(img.state_dict()["net.conv_in.weight"], sd["net.conv_in.weight"])
    out = sample_continuous(
        img, (2, S, S, C), 3, "solver++2", torch.Generator().manual_seed(0), schedule=img.schedule
    )
    assert out.samples.shape == (2, S, S, C)
    assert out.samples.abs().max() <= 1.0

    _fake(official_gpt_keys(), tmp_path / "text8_ema.pt")
    txt = load_nnaisense_checkpoint(tmp_path / "text8_ema.pt", "text8", config=TINY_TEXT)
    out = sample_discrete(
        txt, (2, 16), 27, 3, "solver2_multistep", torch.Generator().manual_seed(0), schedule=txt.schedule
    )
    assert out.samples.shape == (2, 16)
    assert len(decode_text8(out.samples)[0]) == 16


def test_mismatched_or_foreign_checkpoints_are_refused(tmp_path):
    keys = official_unet_keys()
    keys["net.conv_in.weight"] = (E, 3, 3, 3)
    _fake(keys, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="conv_in"):
        load_nnaisense_checkpoint(tmp_path / "bad.pt", "cifar10", config=TINY_IMAGE)
    torch.save({"model.w": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match=r"net\."):
        load_nnaisense_checkpoint(tmp_path / "foreign.pt", "cifar10", config=TINY_IMAGE)


def test_time_convention_matches_the_official_broadcast_shape():
    """The official samplers pass t with the data's shape; our wrapper passes (B,): same outputs."""
    torch.manual_seed(0)
    m = BFNTextModel(TINY_TEXT).eval()
    theta = torch.softmax(torch.randn(2, 16, 27), -1)
    t = torch.tensor([0.3, 0.8])
    assert torch.allclose(m(theta, t), m.net(theta, t[:, None].expand(2, 16)), atol=1e-6)
    img = BFNImageModel(TINY_IMAGE).eval()
    mu = torch.randn(2, S, S, C)
    a = img(mu, t)
    b = img.net(mu, t.reshape(2, 1, 1, 1).expand(2, S, S, C)).reshape(mu.shape)
    assert torch.allclose(a, b, atol=1e-6)


def test_text8_codec_round_trip():
    ids = encode_text8("the quick_brown fox")
    assert decode_text8(ids[None])[0] == "the quick brown fox"
    with pytest.raises(ValueError, match="alphabet"):
        encode_text8("Hello!")
