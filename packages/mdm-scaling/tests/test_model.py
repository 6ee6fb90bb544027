import pytest
import torch
from mdm_scaling.config import ModelConfig, non_embedding_params, preset
from mdm_scaling.generation import arm_generate
from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM, apply_rope, load_model, rope_table

from gen_common.testing import assert_close


@pytest.mark.parametrize(
    ("name", "official"),
    # The official `model_para_config` table of pretrain/train_mdm.py (millions of non-embedding parameters).
    [("6M", 6.294784), ("19M", 18.880896), ("75M", 75.38752), ("170M", 169.897728), ("1028M", 1027.677952),
     ("2121M", 2121.39328)],
)  # fmt: skip
def test_non_embedding_params_match_official_table(name, official):
    assert non_embedding_params(preset(name)) == round(official * 1e6)


def test_preset_aliases_and_errors():
    assert preset("1.1B") == preset("Diff_LLaMA_1028M")
    assert preset("170M").n_layer == 18
    assert preset("170M").n_embd == 768
    with pytest.raises(ValueError, match="unknown preset"):
        preset("7B")
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(n_embd=10, n_head=4)


@pytest.mark.parametrize("cls", [MaskedDiffusionLM, AutoregressiveLM])
def test_counted_params_equal_module_params(cls, tiny_config):
    m = cls(tiny_config)
    emb = m.wte.weight.numel() + m.lm_head.weight.numel()
    assert m.num_params() == sum(p.numel() for p in m.parameters()) - emb
    assert m.num_params(non_embedding=False) == sum(p.numel() for p in m.parameters())


def test_mdm_embeds_mask_and_predicts_real_tokens(tiny_config, seeded_model):
    m = seeded_model(MaskedDiffusionLM, tiny_config)
    assert m.wte.weight.shape[0] == tiny_config.vocab_size + 1
    assert m.mask_id == tiny_config.vocab_size
    x = torch.full((2, 7), m.mask_id)
    assert m(x).shape == (2, 7, tiny_config.vocab_size)
    with pytest.raises(ValueError, match=r"\[0, 11\]"):
        m(torch.full((1, 3), 12))
    arm = seeded_model(AutoregressiveLM, tiny_config)
    with pytest.raises(ValueError, match="token ids"):
        arm(torch.full((1, 3), tiny_config.vocab_size))  # the ARM has no mask token


def test_mdm_is_bidirectional_arm_is_causal(tiny_config, seeded_model):
    x = torch.randint(0, 11, (1, 9), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[0, -1] = (y[0, -1] + 1) % 11
    mdm = seeded_model(MaskedDiffusionLM, tiny_config)
    arm = seeded_model(AutoregressiveLM, tiny_config)
    assert not torch.allclose(mdm(x)[0, 0], mdm(y)[0, 0])  # the first position sees the last token
    assert torch.equal(arm(x)[0, :-1], arm(y)[0, :-1])  # earlier positions do not


def test_rope_scores_depend_on_relative_position_only():
    cos, sin = rope_table(64, 8, 10000.0)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)

    def score(m, n):
        return float(
            (
                apply_rope(q, cos[m : m + 1], sin[m : m + 1]) * apply_rope(k, cos[n : n + 1], sin[n : n + 1])
            ).sum()
        )

    assert score(5, 2) == pytest.approx(score(40, 37), abs=1e-5)
    assert score(5, 2) != pytest.approx(score(5, 3), abs=1e-3)
    # Norm preserving: a rotation.
    assert_close(apply_rope(q, cos[9:10], sin[9:10]).norm(), q.norm(), rtol=1e-6)


@pytest.mark.parametrize("groups", [None, 2, 1])
def test_kv_cache_matches_full_recompute(tiny_config, groups, seeded_model):
    """Acceptance: cached ARM generation = uncached (identical tokens, logits within fp tolerance)."""
    arm = seeded_model(AutoregressiveLM, tiny_config.replace(n_query_groups=groups))
    prompt = torch.randint(0, 11, (3, 5), generator=torch.Generator().manual_seed(1))
    for temp in (0.0, 1.0):
        a = arm_generate(
            arm,
            prompt,
            20,
            temperature=temp,
            cache=True,
            generator=torch.Generator().manual_seed(3),
            return_logits=True,
        )
        b = arm_generate(
            arm,
            prompt,
            20,
            temperature=temp,
            cache=False,
            generator=torch.Generator().manual_seed(3),
            return_logits=True,
        )
        assert torch.equal(a.tokens, b.tokens)
        assert_close(a.logits, b.logits, rtol=1e-5, atol=1e-5)
    assert a.tokens[:, :5].equal(prompt)
    assert a.nfe == 20


def test_kv_cache_chunked_prefill(tiny_config, seeded_model):
    arm = seeded_model(AutoregressiveLM, tiny_config)
    x = torch.randint(0, 11, (2, 12), generator=torch.Generator().manual_seed(2))
    full = arm(x)
    cache = arm.new_cache(2, 12)
    parts = [arm(x[:, :4], cache), arm(x[:, 4:5], cache), arm(x[:, 5:], cache)]
    assert_close(torch.cat(parts, 1), full, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="do not fit"):
        arm(x[:, :1], cache)


@pytest.mark.parametrize("cls", [MaskedDiffusionLM, AutoregressiveLM])
def test_save_load_round_trip(cls, tiny_config, tmp_path, seeded_model):
    m = seeded_model(cls, tiny_config)
    m.save_pretrained(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert type(back) is cls
    assert back.config == tiny_config
    x = torch.randint(0, 11, (2, 6))
    assert torch.equal(m(x), back(x))
    with pytest.raises(FileExistsError):
        m.save_pretrained(tmp_path / "m")
