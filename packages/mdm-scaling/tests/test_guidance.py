import pytest
import radd
import torch
from mdm_scaling.generation import mdm_generate
from mdm_scaling.guidance import UnsupervisedCFG
from mdm_scaling.model import MaskedDiffusionLM

from gen_common.testing import assert_close


def test_w0_is_exactly_the_conditional_model(tiny_config, seeded_model):
    m = seeded_model(MaskedDiffusionLM, tiny_config)
    x = torch.randint(0, 12, (3, 10), generator=torch.Generator().manual_seed(0))
    guided = UnsupervisedCFG(m, 4, 0.0)
    assert torch.equal(guided(x), m(x))
    # ... and through radd's likelihood and sampler, under the same generator.
    seq = torch.randint(0, 11, (2, 10), generator=torch.Generator().manual_seed(1))
    pos = torch.arange(10) >= 4
    a = radd.estimate_nll(guided, seq, 8, generator=torch.Generator().manual_seed(2), positions=pos)
    b = radd.estimate_nll(m, seq, 8, generator=torch.Generator().manual_seed(2), positions=pos)
    assert torch.equal(a, b)
    p = seq[0, :4]
    s1 = mdm_generate(m, p, 10, 5, cfg=0.0, generator=torch.Generator().manual_seed(3), num_samples=4)
    s2 = radd.sample(
        m, 4, 10, 5, prefix=p, remasking="confidence", generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(s1.tokens, s2.tokens)


def test_guided_logits_formula_and_unconditional_input(tiny_config, seeded_model):
    m = seeded_model(MaskedDiffusionLM, tiny_config)
    x = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(0))
    x[:, 5:] = m.mask_id
    w = 0.7
    out = UnsupervisedCFG(m, 3, w)(x)
    u_in = x.clone()
    u_in[:, :3] = m.mask_id
    c, u = m(x), m(u_in)
    assert_close(out, u + (1 + w) * (c - u), rtol=1e-5, atol=1e-5)
    # p ∝ p_c^(1+w) / p_u^w
    target = ((1 + w) * c.log_softmax(-1) - w * u.log_softmax(-1)).log_softmax(-1)
    assert_close(out.log_softmax(-1), target, rtol=1e-4, atol=1e-4)
    # a shared (L,) bool mask equals the int prefix form
    assert torch.equal(UnsupervisedCFG(m, torch.arange(8) < 3, w)(x), out)


def test_cfg_keeps_radd_cache_exact(tiny_config, seeded_model):
    m = seeded_model(MaskedDiffusionLM, tiny_config)
    prompt = torch.tensor([1, 2, 3])
    a = mdm_generate(
        m,
        prompt,
        12,
        6,
        cfg=1.5,
        remasking="random",
        cache=True,
        generator=torch.Generator().manual_seed(0),
        num_samples=5,
    )
    b = mdm_generate(
        m,
        prompt,
        12,
        6,
        cfg=1.5,
        remasking="random",
        cache=False,
        generator=torch.Generator().manual_seed(0),
        num_samples=5,
    )
    assert torch.equal(a.tokens, b.tokens)
    assert (a.tokens[:, :3] == prompt).all()
    assert a.nfe < b.nfe  # the cache saved evaluations


def test_per_row_prompts_and_errors(tiny_config, seeded_model):
    m = seeded_model(MaskedDiffusionLM, tiny_config)
    prompts = torch.tensor([[1, 2], [3, 4], [5, 6]])
    out = mdm_generate(m, prompts, 8, 4, cfg=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.tokens[:, :2], prompts)
    assert (out.tokens < 11).all()
    g = UnsupervisedCFG(m, torch.ones(3, 8, dtype=torch.bool), 1.0)
    with pytest.raises(ValueError, match="all rows"):
        g(torch.zeros(2, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=">= 0"):
        UnsupervisedCFG(m, 2, -1.0)
