"""mdm-scaling's zero-shot harness scores a radd.RADD model (any masked model works: ids in [0, V], V = mask)."""

import pytest
import torch
from mdm_scaling.data import make_batch_fn
from mdm_scaling.training import paper_config, train_lm
from mdm_scaling.zeroshot import Example, MaskedLMScorer, Task, evaluate_task

from gen_common.text import CharTokenizer

radd_model = pytest.importorskip("radd.model")


def tiny_radd(vocab: int, seed: int = 0):
    cfg = radd_model.RADDConfig(
        vocab_size=vocab, max_length=16, hidden_size=32, num_layers=2, num_heads=2, dropout=0.0
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return radd_model.RADD(cfg)


def test_chain_rule_score_of_a_radd_model_is_its_own_log_probability():
    model = tiny_radd(5)
    with torch.no_grad():  # RADD starts with a zero head (uniform); give it opinions
        g = torch.Generator().manual_seed(1)
        for p in model.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g))
    model.eval()
    ctx, tgt = [0, 1, 2], [3, 4]
    mask = model.mask_id
    with torch.no_grad():
        a = model(torch.tensor([[0, 1, 2, mask, mask]]))[0, 3, 3]
        b = model(torch.tensor([[0, 1, 2, 3, mask]]))[0, 4, 4]
    assert MaskedLMScorer(model, method="chain_rule").loglikelihood(ctx, tgt) == pytest.approx(
        float(a + b), rel=1e-5
    )


def test_zero_shot_harness_scores_a_briefly_trained_radd_model():
    tok = CharTokenizer(list("abcd"))
    ids = tok.encode("abcd" * 400)
    model = tiny_radd(tok.vocab_size)
    # mdm-scaling's trainer with its MDM objective (radd's λ-DCE loss) trains radd's network.
    train_lm(
        model,
        make_batch_fn(ids, 16, 12),
        paper_config(steps=300, lr=1e-2, log_every=300),
        device="cpu",
        progress=False,
    )
    model.eval()
    task = Task(
        "cycle",
        [
            Example("abcda", ("bc", "db", "ca"), 0),
            Example("cdab", ("cd", "ab", "bb"), 0),
            Example("bcdabc", ("da", "aa", "cb"), 0),
        ],
    )
    for method, cfg in (("chain_rule", 0.0), ("mc", 0.0), ("chain_rule", 1.0)):
        scorer = MaskedLMScorer(
            model, method=method, cfg=cfg, num_samples=32, generator=torch.Generator().manual_seed(0)
        )
        res = evaluate_task(scorer, tok, task)
        assert res["acc"] == 1.0, (method, cfg, res)
    greedy = Task("cycle-greedy", [Example("abcdab", target="cd")], kind="greedy")
    assert evaluate_task(MaskedLMScorer(model), tok, greedy)["acc"] == 1.0
