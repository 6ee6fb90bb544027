import json
import math
from types import SimpleNamespace

import pytest
import torch
from mdm_scaling.generation import arm_generate
from mdm_scaling.lm_eval_adapter import loglikelihood_requests
from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM
from mdm_scaling.zeroshot import (
    CausalLMScorer,
    Example,
    MaskedLMScorer,
    Task,
    cloze_task,
    encode_pair,
    evaluate_task,
    load_jsonl_task,
)

from gen_common.text import CharTokenizer

TOK = CharTokenizer(list("abcdefghij "))  # V = 11


class Product(torch.nn.Module):
    """Position i predicts q_i whatever it sees: every conditional is q_i, so log p(target | context) is exactly
    Σ log q_i(target_i), and every Monte Carlo estimator is exact in expectation."""

    def __init__(self, L, V, seed=0):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.randn(L, V, generator=torch.Generator().manual_seed(seed)) * 2)
        self.mask_id = V

    def forward(self, x):
        return self.logits[: x.shape[1]].expand(x.shape[0], -1, -1)

    def exact(self, ctx, tgt):
        lp = self.logits.log_softmax(-1)
        return sum(float(lp[len(ctx) + i, t].detach()) for i, t in enumerate(tgt))


def test_load_jsonl_task_kinds_and_errors(tmp_path):
    p = tmp_path / "mc.jsonl"
    p.write_text(
        '{"context": "ab", "choices": ["c", "d"], "answer": 1}\n\n{"context": "a", "choices": ["b", "c"], "answer": 0}\n'
    )
    t = load_jsonl_task(p)
    assert t.name == "mc"
    assert t.kind == "choice"
    assert len(t.examples) == 2
    g = tmp_path / "g.jsonl"
    g.write_text(json.dumps({"context": "ab", "target": "cd"}) + "\n")
    assert load_jsonl_task(g).kind == "greedy"
    for bad, msg in [
        ('{"context": "a", "choices": ["b"], "answer": 0}', "at least 2"),
        ('{"context": "a", "choices": ["b", "c"], "answer": 2}', "index"),
        ('{"choices": ["b", "c"], "answer": 0}', "context"),
        ("not json", "not JSON"),
        ('{"context": "a", "choices": ["b", "c"], "answer": 0}\n{"context": "a", "target": "b"}', "mixes"),
    ]:
        p.write_text(bad + "\n")
        with pytest.raises(ValueError, match=msg):
            load_jsonl_task(p)
    with pytest.raises(FileNotFoundError):
        load_jsonl_task(tmp_path / "none.jsonl")


def test_encode_pair_moves_trailing_space():
    ctx, tgt = encode_pair(TOK, "ab ", "cd")
    assert ctx == TOK.encode("ab").tolist()
    assert tgt == TOK.encode(" cd").tolist()


def test_masked_scorer_chain_rule_exact_and_mc_unbiased():
    model = Product(12, 11)
    ctx, tgt = [1, 2, 3, 4], [5, 6, 7]
    exact = model.exact(ctx, tgt)
    chain = MaskedLMScorer(model, method="chain_rule").loglikelihood(ctx, tgt)
    assert chain == pytest.approx(exact, rel=1e-5)
    for est in ("k", "lambda"):
        mc = MaskedLMScorer(
            model, method="mc", num_samples=512, estimator=est, generator=torch.Generator().manual_seed(0)
        )
        assert mc.loglikelihood(ctx, tgt) == pytest.approx(exact, rel=0.05)
    # With a single target token k-DCE masks exactly that token every draw: exact with one sample.
    one = MaskedLMScorer(
        model, method="mc", num_samples=1, estimator="k", generator=torch.Generator().manual_seed(1)
    )
    assert one.loglikelihood(ctx, tgt[:1]) == pytest.approx(model.exact(ctx, tgt[:1]), rel=1e-5)


def test_masked_scorer_greedy_and_cfg(tiny_config, seeded_model):
    model = Product(12, 11)
    best = model.logits.argmax(-1)
    assert MaskedLMScorer(model).greedy_match([0, 1], best[2:5].tolist())
    assert not MaskedLMScorer(model).greedy_match([0, 1], ((best[2:5] + 1) % 11).tolist())
    # CFG on a context-blind model changes nothing: u = c.
    m = seeded_model(MaskedDiffusionLM, tiny_config)
    s0 = MaskedLMScorer(m, method="chain_rule")
    s1 = MaskedLMScorer(m, method="chain_rule", cfg=1.0)
    assert s0.loglikelihood([1, 2], [3, 4]) != pytest.approx(s1.loglikelihood([1, 2], [3, 4]), abs=1e-6)
    blind = MaskedLMScorer(model, method="chain_rule", cfg=2.0)
    assert blind.loglikelihood([1, 2], [3, 4]) == pytest.approx(model.exact([1, 2], [3, 4]), rel=1e-5)


def test_causal_scorer_exact_and_greedy(tiny_config, seeded_model):
    arm = seeded_model(AutoregressiveLM, tiny_config)
    sc = CausalLMScorer(arm)
    ctx, tgt = [1, 2, 3], [4, 5]
    lp = arm(torch.tensor([ctx + tgt])[:, :-1]).log_softmax(-1)[0].detach()
    assert sc.loglikelihood(ctx, tgt) == pytest.approx(float(lp[2, 4] + lp[3, 5]), rel=1e-5)
    greedy = arm_generate(arm, torch.tensor([ctx]), 3, temperature=0.0).tokens[0, 3:].tolist()
    assert sc.greedy_match(ctx, greedy)
    assert not sc.greedy_match(ctx, [(greedy[0] + 1) % 11, *greedy[1:]])
    with pytest.raises(ValueError, match="non-empty context"):
        sc.loglikelihood([], [1])


def test_evaluate_task_picks_the_likeliest_choice():
    model = Product(12, 11, seed=3)
    best = model.logits.argmax(-1)
    worst = model.logits.argmin(-1)
    ctx = "ab"
    good = TOK.decode(best[2:4])
    bad = TOK.decode(worst[2:4])
    task = Task("t", [Example(ctx, (bad, good), 1)] * 3)
    res = evaluate_task(MaskedLMScorer(model, method="chain_rule"), TOK, task)
    assert res["acc"] == 1.0
    assert res["n"] == 3
    greedy = Task("g", [Example(ctx, target=good)], kind="greedy")
    assert evaluate_task(MaskedLMScorer(model), TOK, greedy)["acc"] == 1.0
    # the lm-eval adapter's core answers harness requests with the same numbers
    reqs = [SimpleNamespace(args=(ctx, good)), SimpleNamespace(args=(ctx, bad))]
    out = loglikelihood_requests(MaskedLMScorer(model, method="chain_rule"), TOK, reqs)
    assert out[0][1] is True
    assert out[1][1] is False
    assert out[0][0] > out[1][0]
    assert math.isfinite(out[1][0])


def test_cloze_task_from_text():
    t = cloze_task("the quick brown fox jumps over the lazy dog " * 20 + "0123456789" * 10, 5, num_choices=3)
    assert t.kind == "choice"
    assert all(len(e.choices) == 3 for e in t.examples)
