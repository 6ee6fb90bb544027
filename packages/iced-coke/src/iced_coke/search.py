"""The switch-step search (paper Sec. 4.2; released as ``RunLoop.binary_search_loop`` with
``BinarySearchEvaluator.evaluate_score``).

``score(k)`` returns (S1, S2): how well the images made with ``k`` first-concept steps show the first and the
second concept. Starting at ``ceil(0.25T)`` inside ``[ceil(0.025T), ceil(0.475T)]``:

* stop and accept ``k`` if ``S1 > τ and S2 > τ`` or ``|S1 − S2| < δ`` (strict inequalities);
* if ``S1 > S2`` the first concept is over-served: ``hi = k`` (fewer stage-1 steps), else ``lo = k``;
* next ``k = ceil((lo + hi)/2) + d·m`` clamped to the bounds, where ``d`` is the *previous* move's direction
  (0 on the first move) and ``m`` the momentum, decremented after every ``momentum_uses`` uses;
* stop when ``hi − lo <= 1``; then ``k* = argmin_k max(τ − S1_k, τ − S2_k)`` over the scored ks (ties: the
  smallest k, as the release's sort of ratio strings gives).

``mode="official"`` calls ``score`` at every visited k, re-probing points already scored (the release regenerates
their images; the latest scores replace the earlier ones) and — if the caller passes one `MomentumState` for
every prompt — lets the momentum decay carry over from prompt to prompt as the release does. The default
``mode="memo"`` follows the same path, scores each k once, and resets the momentum per call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["MomentumState", "SearchError", "SearchResult", "search_bounds", "search_switch_step"]

Scorer = Callable[[int], tuple[float, float]]


class SearchError(ValueError):
    """Bad search arguments or a scorer that returned something other than two finite numbers."""


@dataclass
class MomentumState:
    """The release keeps this on its evaluator object, shared by every prompt of a run."""

    momentum: int = 1
    uses: int = 0
    uses_per_decay: int = 2

    def apply(self) -> int:
        """Return the momentum for this move, then count the use (release: ``check_mom``)."""
        m = self.momentum
        if self.momentum > 0:
            self.uses += 1
            if self.uses == self.uses_per_decay:
                self.uses = 0
                self.momentum -= 1
        return m


@dataclass
class SearchResult:
    switch_step: int
    scores: tuple[float, float]  # (S1, S2) at the chosen step
    accepted: bool  # True: a probe met the stop rule; False: the argmin fallback chose
    probes: list[int]  # the ks passed to `score`, in order (no repeats in "memo" mode)
    trace: list[int]  # every k visited, in order (equals `probes` in "official" mode)
    table: dict[int, tuple[float, float]] = field(default_factory=dict)  # latest (S1, S2) per scored k
    bounds: tuple[int, int] = (0, 0)
    mode: str = "memo"

    def to_json(self) -> dict:
        return {
            "switch_step": self.switch_step,
            "scores": list(self.scores),
            "accepted": self.accepted,
            "probes": self.probes,
            "trace": self.trace,
            "table": {str(k): list(v) for k, v in sorted(self.table.items())},
            "bounds": list(self.bounds),
            "mode": self.mode,
        }


def search_bounds(num_inference_steps: int, start: float = 0.025, end: float = 0.475) -> tuple[int, int, int]:
    """(lo, hi, first probe) as the release computes them: ``ceil(start·T)``, ``ceil(end·T)``,
    ``ceil(round((start + end)/2, 5)·T)`` — (1, 19, 10) for T = 40 and (1, 15, 8) for T = 30."""
    T = num_inference_steps
    if T < 2:
        raise SearchError(f"num_inference_steps must be >= 2 for a search, got {T}")
    if not 0 <= start < end <= 1:
        raise SearchError(f"need 0 <= start < end <= 1, got start={start}, end={end}")
    lo, hi = math.ceil(start * T), math.ceil(end * T)
    return lo, hi, math.ceil(round((start + end) / 2, 5) * T)


def _check(s: tuple[float, float], k: int) -> tuple[float, float]:
    try:
        s1, s2 = (float(v) for v in s)
    except (TypeError, ValueError):
        raise SearchError(f"score({k}) must return two numbers (S1, S2), got {s!r}") from None
    if not (math.isfinite(s1) and math.isfinite(s2)):
        raise SearchError(f"score({k}) returned a non-finite value ({s1}, {s2})")
    return s1, s2


def search_switch_step(
    score: Scorer,
    num_inference_steps: int,
    tau: float = 0.72,
    delta: float = 0.01,
    *,
    mode: Literal["memo", "official"] = "memo",
    start: float = 0.025,
    end: float = 0.475,
    momentum: int = 1,
    momentum_uses: int = 2,
    state: MomentumState | None = None,
    check_ends: bool | None = None,
    max_visits: int | None = None,
) -> SearchResult:
    """Find the MoCE switch step (paper Sec. 4.2). Deterministic given a deterministic ``score``.

    ``state`` is only honoured in ``mode="official"`` (pass the same object for every prompt to reproduce the
    release's momentum leak); ``max_visits`` (default ``4T``) guards against a scorer that changes its answers.
    ``check_ends`` (default: on in "memo", always off in "official"): when the bracket closes without an accepted
    probe, score its ends that were never probed (at most two) before falling back; the release never probes its
    initial bounds, so a crossing at ``ceil(0.475T)`` or ``ceil(0.025T)`` is otherwise missed.
    """
    if mode not in ("memo", "official"):
        raise SearchError(f"mode must be 'memo' or 'official', got {mode!r}")
    if momentum < 0 or momentum_uses < 1:
        raise SearchError("momentum must be >= 0 and momentum_uses >= 1")
    T = num_inference_steps
    b_lo, b_hi, current = search_bounds(T, start, end)
    if mode == "official" and state is not None:
        mom = state
    else:
        mom = MomentumState(momentum, 0, momentum_uses)
    lo, hi = b_lo, b_hi
    last_direction = 0
    table: dict[int, tuple[float, float]] = {}
    probes: list[int] = []
    trace: list[int] = []
    limit = max_visits if max_visits is not None else 4 * T
    accepted = False
    while True:
        if len(trace) >= limit:
            raise SearchError(
                f"the search visited {limit} steps without closing; is the scorer deterministic?"
            )
        trace.append(current)
        if mode == "official" or current not in table:
            table[current] = _check(score(current), current)
            probes.append(current)
        s1, s2 = table[current]
        if (s1 > tau and s2 > tau) or abs(s1 - s2) < delta:
            accepted = True
            break
        direction = -1 if s1 > s2 else 1
        if direction < 0:
            hi = current
        else:
            lo = current
        if hi - lo <= 1:
            break
        mid = math.ceil((lo + hi) / 2)
        if last_direction != 0:  # the release applies the previous move's direction
            mid += last_direction * mom.apply()
        current = min(max(mid, b_lo), b_hi)
        last_direction = direction
    if not accepted and (check_ends if check_ends is not None else mode == "memo") and mode == "memo":
        for end_k in (lo, hi):
            if end_k in table or not b_lo <= end_k <= b_hi:
                continue
            trace.append(end_k)
            probes.append(end_k)
            table[end_k] = s1, s2 = _check(score(end_k), end_k)
            if (s1 > tau and s2 > tau) or abs(s1 - s2) < delta:
                accepted, current = True, end_k
                break
    if accepted:
        k = current
    else:
        # release: sorted(zip(merged, ratio_strings))[0] -> smallest merged score, ties to the smallest ratio
        k = min(table, key=lambda j: (max(tau - table[j][0], tau - table[j][1]), j))
    return SearchResult(k, table[k], accepted, probes, trace, table, (b_lo, b_hi), mode)
