import pytest
import torch
from mdm_scaling.config import preset
from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM
from mdm_scaling.reverse import PAD, FactSet, make_facts, reverse_curse_eval


def test_facts_are_distinct_and_split_in_thirds():
    facts = make_facts(30, seed=1)
    assert len({f.name for f in facts}) == 30
    assert len({f.description for f in facts}) == 30
    assert [sum(f.subset == s for f in facts) for s in ("n2d", "d2n", "both")] == [10, 10, 10]
    assert make_facts(30, seed=1) == facts
    assert make_facts(30, seed=2) != facts
    with pytest.raises(ValueError, match="n must be"):
        make_facts(1000)


def test_training_texts_and_queries_follow_the_directions():
    fs = FactSet.build(9, seed=0)
    texts = fs.training_texts()
    assert len(texts) == 12  # 3 + 3 one-direction facts, 3 facts in both directions
    for f in fs.facts:
        assert (f.forward in texts) == (f.subset in ("n2d", "both"))
        assert (f.backward in texts) == (f.subset in ("d2n", "both"))
    same, rev = fs.queries("same"), fs.queries("reverse")
    assert len(same) == len(rev) == 6
    for (p, a, f), (p2, a2, _) in zip(same, rev):
        trained = f.forward if f.subset == "n2d" else f.backward
        assert trained.startswith(p)
        assert trained == p + a + "."  # the same-direction query completes a training text
        assert p2 + a2 + "." not in texts  # the reverse one never appears in training
    batch = fs.batch_fn(5)(0, torch.Generator().manual_seed(0))
    assert batch.shape == (5, fs.length + 1)
    assert fs.tokenizer.decode(batch[0]).rstrip(PAD).endswith(".")


def test_eval_runs_and_reports_infill_only_for_the_mdm():
    fs = FactSet.build(6, seed=0)
    cfg = preset("tiny-4k", vocab_size=fs.tokenizer.vocab_size, block_size=fs.length + 1)
    torch.manual_seed(0)
    mdm = MaskedDiffusionLM(cfg).eval()
    arm = AutoregressiveLM(cfg).eval()
    r_mdm = reverse_curse_eval(mdm, fs, steps=4, cfg=0.5, generator=torch.Generator().manual_seed(0))
    r_arm = reverse_curse_eval(arm, fs, steps=4)
    assert set(r_mdm) == {"same", "reverse", "reverse_infill"}
    assert set(r_arm) == {"same", "reverse"}
    assert all(0.0 <= v <= 1.0 for v in [*r_mdm.values(), *r_arm.values()])


class Oracle(torch.nn.Module):
    """A masked model that knows the training sentences: at every masked position it predicts the character of
    the unique training text consistent with the visible ones (ties: the first). Infilling must then be perfect."""

    def __init__(self, fs):
        super().__init__()
        self.mask_id = fs.tokenizer.vocab_size
        self.texts = fs.encode_padded(fs.training_texts(), fs.length)
        self.V = fs.tokenizer.vocab_size
        self.p = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        vis = x != self.mask_id
        agree = ((self.texts[None] == x[:, None]) | ~vis[:, None]).all(-1)  # (B, T)
        pick = agree.float().argmax(1)
        target = self.texts[pick]
        return torch.nn.functional.one_hot(target, self.V).float() * 20


def test_infill_with_an_oracle_masked_model_is_perfect():
    fs = FactSet.build(9, seed=3)
    res = reverse_curse_eval(Oracle(fs), fs, steps=8)
    assert res["reverse_infill"] == 1.0
    assert res["same"] == 1.0
