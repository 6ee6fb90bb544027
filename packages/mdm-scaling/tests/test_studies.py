import math

import pytest
import torch
from mdm_scaling.config import preset
from mdm_scaling.data import TokenData, make_batch_fn
from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM
from mdm_scaling.scaling import read_runs
from mdm_scaling.shift import shift_table, stdlib_docstrings
from mdm_scaling.speed import generative_nll, matched_quality_speedup, speed_table, unigram_entropy
from mdm_scaling.sweep import SweepConfig, run_sweep


@pytest.fixture(scope="module")
def data():
    return TokenData.bundled(max_chars=40_000)


def test_micro_sweep_rows_and_resume(data, tmp_path):
    cfg = SweepConfig(
        budgets=(4e6, 8e6),
        sizes=("tiny-1k", "tiny-2k"),
        batch_size=4,
        length=16,
        min_steps=2,
        max_steps=40,
        eval_windows=4,
        eval_samples=2,
    )
    csv = tmp_path / "runs.csv"
    rows = run_sweep(cfg, data, csv_path=csv)
    assert len(rows) == 8
    for r in rows:
        assert r["flops"] == pytest.approx(6 * r["params"] * r["tokens"])
        assert r["tokens"] == r["steps"] * 4 * 16
        assert math.isfinite(r["loss"])
    assert {r["arch"] for r in rows} == {"mdm", "arm"}
    back = read_runs(csv)
    assert len(back) == 8
    seen = []
    again = run_sweep(cfg, data, csv_path=csv, on_run=seen.append)
    assert seen == []  # every run already in the CSV: nothing retrained
    assert len(again) == 8


def test_identical_batches_for_both_archs(data):
    fn = make_batch_fn(data.train, 3, 8, ssl_prob=0.5)
    a = [fn(s, torch.Generator().manual_seed(s)) for s in range(6)]
    b = [fn(s, torch.Generator().manual_seed(s)) for s in range(6)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert {x.shape[1] for x in a} != {9}  # some batches were cropped (stochastic sequence length)


def test_speed_table_and_quality_metrics(data):
    cfg = preset("tiny-4k", vocab_size=data.vocab_size, block_size=24)
    torch.manual_seed(0)
    mdm, arm = MaskedDiffusionLM(cfg).eval(), AutoregressiveLM(cfg).eval()
    prompts = data.val[:12].reshape(3, 4)
    rows = speed_table(mdm, arm, arm, prompts, 12, mdm_steps=(2, 4))
    assert [r["method"] for r in rows] == ["arm+kv-cache", "arm (no cache)", "mdm (random)", "mdm (random)"]
    # the same generator: the cached and uncached ARM produce the same samples, so the same quality
    assert rows[0]["gen_nll"] == pytest.approx(rows[1]["gen_nll"], rel=1e-6)
    assert all(r["gen_ppl"] == pytest.approx(math.exp(r["gen_nll"])) for r in rows)
    m = matched_quality_speedup(
        [{**rows[0], "gen_nll": 3.0, "seconds": 2.0}, {**rows[2], "gen_nll": 2.9, "seconds": 1.0}]
    )
    assert m["speedup"] == 2.0
    assert m["matched_steps"] == 2
    assert unigram_entropy(torch.tensor([[1, 1, 2, 2]])) == pytest.approx(math.log(2))
    x = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        full = float(torch.nn.functional.cross_entropy(arm(x[:, :-1])[0, 1:], x[0, 2:]))
    assert generative_nll(arm, x, 2) == pytest.approx(full, rel=1e-5)


def test_shift_study_pieces(data):
    text = stdlib_docstrings(20_000)
    assert text == stdlib_docstrings(20_000)
    assert len(text) == 20_000
    shifted = data.tokenizer.encode(text, errors="replace")
    cfg = preset("tiny-1k", vocab_size=data.vocab_size, block_size=17)
    arm = AutoregressiveLM(cfg)
    with torch.no_grad():
        arm.lm_head.weight.zero_()
    rows = shift_table({"arm": arm}, data.val, shifted, length=16, windows=4)
    assert rows[0]["in_dist"] == pytest.approx(math.log(data.vocab_size), rel=1e-5)
    assert rows[0]["ratio"] == pytest.approx(
        1.0, rel=1e-5
    )  # a uniform model has no distribution to shift from
