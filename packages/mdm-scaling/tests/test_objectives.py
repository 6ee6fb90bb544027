import math

import pytest
import torch
import torch.nn.functional as F
from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM
from mdm_scaling.objectives import arm_loss, mdm_loss, mdm_sft_loss, validation_loss

from gen_common.testing import assert_close, assert_within_sigmas


class Uniform(torch.nn.Module):
    """Predicts every token with probability 1/V wherever it looks: every likelihood is exactly L·log V."""

    def __init__(self, V):
        super().__init__()
        self.V = V
        self.mask_id = V
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        return torch.zeros(*x.shape, self.V) + self.w


def test_arm_loss_is_next_token_cross_entropy(tiny_config, seeded_model):
    m = seeded_model(AutoregressiveLM, tiny_config)
    x = torch.randint(0, 11, (3, 9), generator=torch.Generator().manual_seed(0))
    logits = m(x[:, :-1])
    ref = F.cross_entropy(logits.reshape(-1, 11), x[:, 1:].reshape(-1))
    assert_close(arm_loss(m, x), ref, rtol=1e-6)
    w = torch.zeros(3, 8)
    w[:, -2:] = 1
    ref_w = F.cross_entropy(logits[:, -2:].reshape(-1, 11), x[:, -2:].reshape(-1))
    assert_close(arm_loss(m, x, w), ref_w, rtol=1e-6)


def test_mdm_loss_is_per_token_bound_of_eq3():
    """For a uniform predictor the SMDM loss Σ_masked CE/λ /(B·L) has expectation exactly log V per token."""
    V, B, L = 7, 4096, 16
    x = torch.randint(0, V, (B, L + 1), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        per_batch = [
            float(mdm_loss(Uniform(V), x[i : i + 256], torch.Generator().manual_seed(i)))
            for i in range(0, B, 256)
        ]
    mean = sum(per_batch) / len(per_batch)
    sd = torch.tensor(per_batch).std().item() / math.sqrt(len(per_batch))
    assert_within_sigmas(mean, math.log(V), sd)


def test_mdm_loss_trains_the_model(tiny_config, seeded_model):
    m = seeded_model(MaskedDiffusionLM, tiny_config).train()
    x = torch.randint(0, 11, (4, 9))
    loss = mdm_loss(m, x, torch.Generator().manual_seed(0))
    loss.backward()
    assert loss.ndim == 0
    assert torch.isfinite(m.wte.weight.grad).all()
    assert m.wte.weight.grad[m.mask_id].abs().sum() > 0  # the mask row is what masked positions read


def test_sft_loss_masks_only_the_response_and_drops_prompts():
    V, L = 5, 10
    x = torch.randint(0, V, (64, L + 1), generator=torch.Generator().manual_seed(1))
    prompt = torch.arange(L) < 4
    m = Uniform(V)
    loss = mdm_sft_loss(m, x, prompt, torch.Generator().manual_seed(2))
    seen = torch.cat(m.inputs)
    assert (seen[:, :4] != V).all()  # prompt never masked
    assert (seen[:, 4:] == V).any()
    assert float(loss.detach()) == pytest.approx(math.log(V), rel=0.15)
    m.inputs.clear()
    mdm_sft_loss(m, x, prompt, torch.Generator().manual_seed(2), prompt_dropout=1.0)
    assert (torch.cat(m.inputs)[:, :4] == V).all()  # supervised CFG: the whole prompt dropped
    m.inputs.clear()
    mdm_sft_loss(m, x, prompt, torch.Generator().manual_seed(3), prompt_dropout=0.5)
    dropped = (torch.cat(m.inputs)[:, :4] == V).all(1).float().mean()
    assert 0.3 < float(dropped) < 0.7


def test_validation_loss_exact_for_uniform_models(tiny_config):
    V = tiny_config.vocab_size
    x = torch.randint(0, V, (8, 13))
    arm = AutoregressiveLM(tiny_config)
    with torch.no_grad():
        arm.lm_head.weight.zero_()  # uniform predictions
    assert validation_loss(arm, x) == pytest.approx(math.log(V), rel=1e-5)
    est = validation_loss(Uniform(V), x, num_samples=256, generator=torch.Generator().manual_seed(0))
    assert est == pytest.approx(math.log(V), rel=0.05)


def test_sft_loss_fns_score_only_responses(tiny_config, seeded_model):
    from mdm_scaling.data import make_sft_batch_fn
    from mdm_scaling.objectives import sft_loss_fn_for

    class Tok:
        def encode(self, s):
            return [ord(c) - 97 for c in s]

    fn = make_sft_batch_fn([("abc", "de"), ("ab", "cdef")], Tok(), 4, 8, pad_id=10)
    x, pm = fn(0, torch.Generator().manual_seed(0))
    assert x.shape == pm.shape == (4, 9)
    assert all(int(pm[i].sum()) in (2, 3) for i in range(4))
    arm = seeded_model(AutoregressiveLM, tiny_config)
    loss = sft_loss_fn_for(arm)(arm, (x, pm), None)
    assert_close(loss, arm_loss(arm, x, weights=(~pm[:, 1:]).float()), rtol=1e-6)
    m = Uniform(11)
    sft_loss_fn_for(m, prompt_dropout=0.0)(m, (x, pm), torch.Generator().manual_seed(0))
    seen = torch.cat(m.inputs)
    assert (seen[pm[:, :-1]] != 11).all()
