"""Probing for the search: the stage-1 cache gives the same images (so the same scores) as re-running both stages,
for a fraction of the UNet evaluations, on tiny SD (one pipeline) and tiny SDXL (hand-off)."""

from __future__ import annotations

import numpy as np
import pytest
from iced_coke.pairs import ConceptPair
from iced_coke.probing import MoCEProbe
from iced_coke.scoring import ReferenceScorer
from iced_coke.search import search_switch_step

PAIR = ConceptPair("a tea cup of iced coke", "tea cup", "a small cup", "iced coke", "dark liquid with ice")
KW = {"height": 32, "width": 32, "guidance_scale": 3.0}


def _scorer(pipe, T, refiner=None, n=2):
    ref = MoCEProbe(pipe, PAIR, None, T, num_images=n, batch_size=1, cache=False, **KW)
    return ReferenceScorer(ref.generate(T), ref.generate(0), crossing=0.85)


@pytest.mark.parametrize("handoff", [False, True])
def test_cache_equals_rerun_and_counts_follow_the_formula(request, handoff):
    pipe = request.getfixturevalue("sdxl_pipe" if handoff else "sd_pipe")
    refiner = request.getfixturevalue("sdxl_refiner") if handoff else None
    T, n, b = 6, 2, 1
    scorer = _scorer(pipe, T, n=n)
    cached = MoCEProbe(pipe, PAIR, scorer, T, refiner=refiner, num_images=n, batch_size=b, **KW)
    rerun = MoCEProbe(pipe, PAIR, scorer, T, refiner=refiner, num_images=n, batch_size=b, cache=False, **KW)
    assert cached.cache_used and not rerun.cache_used
    ks = [2, 1, 3]
    for k in ks:
        assert cached(k) == rerun(k)
        for a, c in zip(cached.images[k], rerun.images[k]):
            assert np.array_equal(np.asarray(a), np.asarray(c))
    batches = n // b
    assert cached.counts["unet_calls"] == batches * (T // 2 + sum(T - k for k in ks))
    assert rerun.counts["unet_calls"] == batches * len(ks) * T


def test_reference_scorer_is_monotone_and_search_finds_the_crossing(sd_pipe):
    T = 10
    scorer = _scorer(sd_pipe, T)
    probe = MoCEProbe(sd_pipe, PAIR, scorer, T, num_images=2, batch_size=2, **KW)
    table = {k: probe(k) for k in range(0, 6)}
    s1 = [table[k][0] for k in range(6)]
    s2 = [table[k][1] for k in range(6)]
    assert s1 == sorted(s1) and s2 == sorted(s2, reverse=True)
    r = search_switch_step(probe, T, delta=0.05)
    assert r.switch_step in table and len(r.probes) == len(set(r.probes))
    best = min(range(1, 6), key=lambda k: abs(table[k][0] - table[k][1]))
    assert r.switch_step == best
