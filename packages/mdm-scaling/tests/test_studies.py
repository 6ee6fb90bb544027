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


def test_matched_quality_picks_the_fastest_mdm_at_arm_quality_or_reports_the_gap():
    def row(method, steps, nll, secs):
        return {"method": method, "steps": steps, "gen_nll": nll, "gen_nll_se": 0.05, "seconds": secs}

    arm = row("arm+kv-cache", 56, 3.0, 1.0)
    rows = [arm, row("arm (no cache)", 56, 3.0, 4.0), row("mdm (random)", 8, 3.2, 0.2)]
    rows += [row("mdm (random)", 16, 2.95, 0.5), row("mdm (random)", 32, 2.9, 0.8)]
    m = matched_quality_speedup(rows)
    assert (m["matched_steps"], m["speedup"]) == (16, 2.0)  # 8 steps is faster but worse
    assert m["best_mdm_steps"] == 32
    assert m["gap"] == pytest.approx(-0.1)
    loose = matched_quality_speedup(rows, tolerance=0.25)  # within tolerance: the 8-step row counts
    assert (loose["matched_steps"], loose["speedup"]) == (8, 5.0)
    worse = [arm, row("mdm (random)", 8, 4.0, 0.1), row("mdm (random)", 64, 3.5, 2.0)]
    m = matched_quality_speedup(worse)
    assert m["speedup"] is None and m["matched_steps"] is None
    assert m["best_mdm_steps"] == 64
    assert m["gap"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no 'arm\\+kv-cache' row"):
        matched_quality_speedup(worse[1:])
    assert m["crossing"]["status"] == "none"
    assert m["crossing"]["gap"] == pytest.approx(0.5)
    assert m["crossing"]["gap_in_se"] == pytest.approx(0.5 / math.hypot(0.05, 0.05))


def _curve(arm_nll, se=0.05, steps=(8, 16, 32, 64), noise=None):
    """MDM quality y(s) = 4 − 0.5·log2 s (2.5, 2.0, 1.5, 1.0), seconds 0.01·s; ARM at ``arm_nll``, 0.45 s."""
    noise = noise if noise is not None else [0.0] * (len(steps) + 1)
    rows = [
        {
            "method": "arm+kv-cache",
            "steps": 56,
            "gen_nll": arm_nll + noise[0],
            "gen_nll_se": se,
            "seconds": 0.45,
        }
    ]
    for i, s in enumerate(steps):
        y = 4 - 0.5 * math.log2(s) + noise[i + 1]
        rows.append(
            {"method": "mdm (random)", "steps": s, "gen_nll": y, "gen_nll_se": se, "seconds": 0.01 * s}
        )
    return rows


def test_quality_crossing_is_the_known_one_with_its_standard_error():
    from mdm_scaling.speed import quality_crossing

    c = quality_crossing(_curve(1.75))  # y = 1.75 at log2 s = 4.5
    assert c["status"] == "crossed"
    assert c["steps"] == pytest.approx(16 * math.sqrt(2))
    assert c["seconds"] == pytest.approx(0.16 * math.sqrt(2))
    assert c["speedup"] == pytest.approx(0.45 / (0.16 * math.sqrt(2)))
    # Delta-method standard errors against the spread of the crossing over redrawn NLLs (same SEs).
    g = torch.Generator().manual_seed(0)
    draws = [
        quality_crossing(_curve(1.75, noise=(0.05 * torch.randn(5, generator=g)).tolist()))
        for _ in range(4000)
    ]
    assert all(d["status"] == "crossed" for d in draws)
    steps = torch.tensor([d["steps"] for d in draws])
    speed = torch.tensor([d["speedup"] for d in draws])
    assert float(steps.std()) == pytest.approx(c["steps_se"], rel=0.1)
    assert float(speed.std()) == pytest.approx(c["speedup_se"], rel=0.1)
    # Exactly at a swept point; tolerance moves the level; the fewest steps already matching; no crossing at all.
    assert quality_crossing(_curve(2.0))["steps"] == pytest.approx(16)
    assert quality_crossing(_curve(1.5), tolerance=0.5)["steps"] == pytest.approx(16)
    below = quality_crossing(_curve(3.0))
    assert (below["status"], below["steps"], below["speedup"]) == (
        "below_sweep",
        8,
        pytest.approx(0.45 / 0.08),
    )
    none = quality_crossing(_curve(0.5))
    assert (none["status"], none["steps"], none["speedup"]) == ("none", None, None)
    assert none["gap"] == pytest.approx(0.5)
    assert none["closest_steps"] == 64


def test_speed_rows_count_cfg_passes_and_standard_errors(data):
    cfg = preset("tiny-1k", vocab_size=data.vocab_size, block_size=16)
    torch.manual_seed(0)
    mdm, arm = MaskedDiffusionLM(cfg).eval(), AutoregressiveLM(cfg).eval()
    prompts = data.val[:16].reshape(4, 4)
    plain = speed_table(mdm, arm, arm, prompts, 10, mdm_steps=(3,), include_uncached=False, repeats=2)
    guided = speed_table(mdm, arm, arm, prompts, 10, mdm_steps=(3,), include_uncached=False, cfg=1.0)
    from mdm_scaling.generation import mdm_generate
    from mdm_scaling.speed import generative_nll_per_sequence

    from gen_common.bench import NFECounter
    from gen_common.seeding import make_generator, split_seed

    # the same draw as speed_table's 3-step row, through a counter of the network's batch rows
    counted = NFECounter(mdm)
    gen = make_generator(split_seed(0, 2, 3))
    out = mdm_generate(counted, prompts, 10, 3, cfg=1.0, remasking="random", generator=gen)
    assert torch.equal(out.tokens[:, :4], prompts)
    assert guided[1]["nfe"] == pytest.approx(counted.rows / 4)  # conditional + unconditional rows per call
    assert guided[1]["nfe"] == pytest.approx(2 * out.nfe)
    assert guided[1]["method"] == "mdm (random, cfg 1)"
    assert plain[1]["nfe"] <= 3
    # gen_nll / gen_nll_se: mean and standard error of the per-sequence NLLs of the same samples
    tokens = arm_generate_tokens(arm, prompts, 6)
    per = generative_nll_per_sequence(arm, tokens, 4)
    assert per.shape == (4,)
    assert plain[0]["gen_nll"] == pytest.approx(float(per.mean()), rel=1e-6)
    assert plain[0]["gen_nll_se"] == pytest.approx(float(per.std() / 2), rel=1e-6)
    with pytest.raises(ValueError, match="no room"):
        speed_table(mdm, arm, arm, prompts, 4)


def arm_generate_tokens(arm, prompts, new):
    """The ARM samples speed_table draws (its generator seed for the ARM rows)."""
    from mdm_scaling.generation import arm_generate

    from gen_common.seeding import make_generator, split_seed

    return arm_generate(arm, prompts, new, generator=make_generator(split_seed(0, 1))).tokens
