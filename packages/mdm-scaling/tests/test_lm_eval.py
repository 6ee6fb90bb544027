"""The lm-evaluation-harness adapter against the installed harness (opt-in: lm-eval is not in the workspace lock).

Run it in its own environment, with the harness added for this one command::

    GEN_RUN_SLOW=1 uv run --package mdm-scaling --with "lm-eval>=0.4" pytest packages/mdm-scaling/tests/test_lm_eval.py -q

Without lm-eval importable the tests skip; without ``GEN_RUN_SLOW=1`` (or ``--run-slow``) they do not run.
"""

import math

import pytest
import torch
from mdm_scaling.lm_eval_adapter import make_lm_eval_model
from mdm_scaling.zeroshot import CausalLMScorer, MaskedLMScorer

from gen_common.text import CharTokenizer

pytestmark = pytest.mark.slow
lm_eval = pytest.importorskip("lm_eval")

TOK = CharTokenizer(list("abcdefghij "))  # V = 11


class Product(torch.nn.Module):
    """Position i predicts q_i whatever it sees, so log p(continuation | context) = Σ log q_i exactly."""

    def __init__(self, L=16, V=11, seed=0):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.randn(L, V, generator=torch.Generator().manual_seed(seed)) * 2)
        self.mask_id = V

    def forward(self, x):
        return self.logits[: x.shape[1]].expand(x.shape[0], -1, -1)

    def exact(self, ctx, tgt):
        lp = self.logits.log_softmax(-1)
        return sum(float(lp[len(ctx) + i, t].detach()) for i, t in enumerate(tgt))


def _instances(pairs):
    from lm_eval.api.instance import Instance

    return [
        Instance(request_type="loglikelihood", doc={"i": i}, arguments=pair, idx=i)
        for i, pair in enumerate(pairs)
    ]


def test_adapter_is_a_harness_lm_answering_real_instances():
    from lm_eval.api.model import LM

    model = Product()
    best = TOK.decode(model.logits.argmax(-1)[3:6].tolist())
    worst = TOK.decode(model.logits.argmin(-1)[3:6].tolist())
    lm = make_lm_eval_model(MaskedLMScorer(model, method="chain_rule"), TOK)
    assert isinstance(lm, LM)
    # "abc " ends in a space: the harness convention moves it to the continuation (position 3 onwards).
    out = lm.loglikelihood(_instances([("abc", best), ("abc", worst), ("ab ", "c" + best[1:])]))
    assert len(out) == 3
    assert out[0][0] == pytest.approx(model.exact(TOK.encode("abc"), TOK.encode(best)), abs=1e-5)
    assert out[1][0] == pytest.approx(model.exact(TOK.encode("abc"), TOK.encode(worst)), abs=1e-5)
    assert (out[0][1], out[1][1]) == (True, False)  # greedy decoding gives the argmax continuation only
    assert out[2][0] == pytest.approx(model.exact(TOK.encode("ab"), TOK.encode(" c" + best[1:])), abs=1e-5)
    fast = make_lm_eval_model(MaskedLMScorer(model, method="chain_rule"), TOK, greedy=False)
    assert [o[0] for o in fast.loglikelihood(_instances([("abc", best)]))] == pytest.approx([out[0][0]])
    with pytest.raises(NotImplementedError, match="rolling"):
        lm.loglikelihood_rolling(_instances([("abc", best)]))


def test_adapter_with_a_causal_model_equals_its_exact_likelihood(seeded_model, tiny_config):
    from mdm_scaling.model import AutoregressiveLM

    arm = seeded_model(AutoregressiveLM, tiny_config, seed=4)
    lm = make_lm_eval_model(CausalLMScorer(arm), TOK)
    ctx, cont = "abcd", "efg"
    ((ll, _greedy),) = lm.loglikelihood(_instances([(ctx, cont)]))
    ids = torch.as_tensor(TOK.encode(ctx + cont))[None]
    with torch.no_grad():
        lp = arm(ids[:, :-1]).log_softmax(-1)[0]
    expected = sum(float(lp[3 + i, ids[0, 4 + i]]) for i in range(3))
    assert ll == pytest.approx(expected, abs=1e-5)
    assert math.isfinite(ll) and ll < 0


def test_simple_evaluate_on_a_local_multiple_choice_task(tmp_path):
    """A whole harness run (task YAML, local JSONL data, the harness's own request building and metrics)."""
    import json

    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    model = Product(seed=7)
    good = TOK.decode(model.logits.argmax(-1)[3:5].tolist())
    bad = TOK.decode(model.logits.argmin(-1)[3:5].tolist())
    docs = [
        {"context": "abc", "choices": [good, bad], "answer": 0},
        {"context": "abc", "choices": [bad, good], "answer": 0},
        {"context": "abc", "choices": [bad, bad[::-1], good], "answer": 2},
    ]
    (tmp_path / "toy.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (tmp_path / "toy.yaml").write_text(
        "task: mdm_scaling_toy\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {tmp_path / 'toy.jsonl'}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "{{context}}"\n'
        'doc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{answer}}"\n'
        'target_delimiter: ""\n'
        "metric_list:\n  - metric: acc\n"
    )
    lm = make_lm_eval_model(MaskedLMScorer(model, method="chain_rule"), TOK, greedy=False)
    res = simple_evaluate(
        model=lm, tasks=["mdm_scaling_toy"], task_manager=TaskManager(include_path=str(tmp_path))
    )
    # the likeliest continuation is the answer of the first and third documents, not of the second
    assert res["results"]["mdm_scaling_toy"]["acc,none"] == pytest.approx(2 / 3)
