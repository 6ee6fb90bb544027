"""The switch-step search on mock scorers: the official mode reproduces the released code's probe sequence (run
side by side), the memo mode never re-scores a k, T = 30 works, and the release's bugs are absent."""

from __future__ import annotations

import math
import random

import pytest
from iced_coke.search import MomentumState, SearchError, search_bounds, search_switch_step


def crossing(c: float, slope: float = 0.013, level: float = 0.6):
    """Monotone mock: S1 grows and S2 falls with the stage-1 steps; |S1 − S2| < 0.01 only at k = c."""
    return lambda k: (level + slope * (k - c), level - slope * (k - c))


def random_scorer(seed: int):
    rng = random.Random(seed)
    table = {k: (rng.uniform(0.55, 0.8), rng.uniform(0.55, 0.8)) for k in range(0, 41)}
    return lambda k: table[k]


class Counting:
    def __init__(self, f):
        self.f, self.calls = f, []

    def __call__(self, k):
        self.calls.append(k)
        return self.f(k)


def test_bounds_as_released():
    assert search_bounds(40) == (1, 19, 10)
    assert search_bounds(30) == (1, 15, 8)
    with pytest.raises(SearchError):
        search_bounds(1)


SCORERS = [("cross", c) for c in (1.0, 2.0, 7.0, 8.0, 12.0, 16.0, 18.0, 19.0, 13.4)] + [
    ("rand", s) for s in range(12)
]


@pytest.mark.parametrize(("kind", "arg"), SCORERS)
def test_official_mode_reproduces_released_probe_sequence_t40(official, kind, arg):
    score_mod, gen_mod, release_search = official
    f = crossing(arg) if kind == "cross" else random_scorer(int(arg))
    best, probed, _ = release_search(score_mod, gen_mod, f, 40)
    ours = search_switch_step(f, 40, mode="official")
    assert ours.probes == probed
    ratio = float(best[0])  # the release returns a float when it accepts and its ratio *string* on fallback
    assert ours.switch_step == round(ratio * 40)
    assert ours.accepted == (not isinstance(best[0], str))
    assert ours.scores == pytest.approx(best[1:])


def test_release_fallback_returns_a_string_and_ours_an_int(official):
    score_mod, gen_mod, release_search = official

    def f(k):
        return (0.9, 0.5)  # never acceptable: bisects down to the lower bound, then falls back

    best, probed, _ = release_search(score_mod, gen_mod, f, 40)
    assert isinstance(best[0], str)
    ours = search_switch_step(f, 40, mode="official")
    assert type(ours.switch_step) is int and not ours.accepted and ours.probes == probed


def test_release_t30_key_error_and_ours_works(official):
    """Float-string cache keys: str((i+1)/T) stored, str(round(k/T, 5)) looked up -> KeyError at T = 30 for k = 5."""
    score_mod, gen_mod, release_search = official
    f = crossing(5.0)
    with pytest.raises(KeyError):
        release_search(score_mod, gen_mod, f, 30)
    for mode in ("official", "memo"):
        r = search_switch_step(f, 30, mode=mode)
        assert r.switch_step == 5 and r.accepted


def test_momentum_leaks_across_prompts_only_in_official_mode(official):
    score_mod, gen_mod, release_search = official
    prompts = [crossing(16.0), crossing(12.0), crossing(3.0)]
    ev, release_probes = None, []
    for f in prompts:  # one evaluator for the whole run, as run.py builds it
        _, probed, ev = release_search(score_mod, gen_mod, f, 40, evaluator=ev)
        release_probes.append(probed)
    shared = MomentumState()
    ours = [search_switch_step(f, 40, mode="official", state=shared).probes for f in prompts]
    assert ours == release_probes
    fresh = [search_switch_step(f, 40, mode="official").probes for f in prompts]
    assert fresh != ours  # the leak changes the second prompt's path
    # the state is ignored outside official mode: memo follows the fresh-momentum path for every prompt
    memo = [search_switch_step(f, 40, state=shared).trace for f in prompts]
    assert memo == [search_switch_step(f, 40, mode="official").trace for f in prompts]


@pytest.mark.parametrize("T", [30, 40])
@pytest.mark.parametrize("seed", range(8))
def test_memo_follows_official_path_and_never_rescores(T, seed):
    f = random_scorer(seed) if seed else crossing(8.0)
    off = Counting(f)
    memo = Counting(f)
    o = search_switch_step(off, T, mode="official")
    m = search_switch_step(memo, T, check_ends=False)
    assert m.trace == o.trace and m.switch_step == o.switch_step
    assert len(set(memo.calls)) == len(memo.calls) == len(m.probes)
    assert memo.calls == list(dict.fromkeys(o.probes))
    assert off.calls == o.probes
    assert search_switch_step(f, T).probes == search_switch_step(f, T).probes  # deterministic


def test_official_reprobes_what_memo_does_not():
    f = crossing(8.0)  # path 10, 6, 7, 10, 9, 8: momentum sends the search back to 10
    o = search_switch_step(f, 40, mode="official")
    m = search_switch_step(f, 40)
    assert o.probes == [10, 6, 7, 10, 9, 8] and m.probes == [10, 6, 7, 9, 8]
    assert o.trace == m.trace


@pytest.mark.parametrize("T", [30, 40])
def test_memo_ends_on_the_stop_rule_whenever_a_step_meets_it(T):
    lo, hi, _ = search_bounds(T)
    for c in range(lo, hi + 1):
        r = search_switch_step(crossing(float(c)), T)
        assert r.accepted and r.switch_step == c, c
        s1, s2 = r.scores
        assert abs(s1 - s2) < 0.01
        assert len(r.probes) <= math.ceil(math.log2(hi - lo)) + 3


def test_strict_inequalities():
    # S1 == S2 + delta exactly is not "< delta"; S == tau exactly is not "> tau"
    r = search_switch_step(lambda k: (0.75, 0.5), 40)
    assert not r.accepted
    r = search_switch_step(lambda k: (0.72, 0.72 + 0.5), 40, delta=0.01)
    assert not r.accepted
    r = search_switch_step(lambda k: (0.7201, 0.9), 40)
    assert r.accepted and r.probes == [10]


def test_argmin_fallback_with_ties_to_the_smallest_k():
    table = {10: (0.9, 0.5), 6: (0.8, 0.6), 3: (0.75, 0.65), 1: (0.76, 0.65)}
    r = search_switch_step(table.__getitem__, 40, mode="official")
    assert r.probes == [10, 6, 3, 1] and not r.accepted
    # max(τ − S1, τ − S2) ties between k = 3 and k = 1: the smallest k, as the release's sort of ratio strings
    assert r.switch_step == 1


def test_bad_scores_are_one_line_errors():
    with pytest.raises(SearchError, match="two numbers"):
        search_switch_step(lambda k: 0.5, 40)
    with pytest.raises(SearchError, match="non-finite"):
        search_switch_step(lambda k: (float("nan"), 0.5), 40)
    with pytest.raises(SearchError, match="mode"):
        search_switch_step(lambda k: (0.5, 0.5), 40, mode="fast")
