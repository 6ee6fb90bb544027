"""Mining LC-Mis concept pairs with an LLM (paper Sec. 3; the release does not include this pipeline).

Phases, as the paper describes them:

1. expert seed pairs, grouped into patterns (the ``pattern`` field of a pair file);
2. per pattern, the LLM proposes more pairs; a judge generates images and rates each pair 1–5 (5 = the model
   loses the first concept: the worst misalignment); pairs at ``min_level`` or above are kept;
3. the LLM proposes new patterns from the known ones, and phase 2 runs on them;
4. the LLM blends pairs of patterns into new ones, and phase 2 runs on those.

Every prompt, answer and judgement is appended to a JSONL log as it finishes (flushed and fsynced). A resumed
run reads the log and repeats no prompt: an LLM call or judgement whose id is in the log is replayed from it.
Answers that do not parse are recorded with ``"error"`` and skipped, not fatal.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from iced_coke.llm import LLM
from iced_coke.pairs import FIELDS, ConceptPair, PairFileError

__all__ = ["Judge", "Judgement", "MiningLog", "MiningResult", "ScoreJudge", "mine_pairs", "parse_json_list"]

SYSTEM = (
    "You help find Latent Concept Misalignment (LC-Mis) in text-to-image models: prompts that combine two concepts "
    "where the model drops the first concept because the second usually appears with something else "
    '(e.g. "a tea cup of iced coke" gives a glass of coke). Answer with JSON only.'
)
PAIR_FORMAT = (
    "Answer with a JSON list of objects with the fields prompt, first_prompt (the concept the model tends to lose), "
    "first_describe (a one-line visual description of it), second_prompt, second_describe."
)


@dataclass(frozen=True)
class Judgement:
    level: int  # 1 (drawn right) .. 5 (first concept lost)
    scores: tuple[float, float] = (float("nan"), float("nan"))
    note: str = ""


class Judge(Protocol):
    def judge(self, pair: ConceptPair) -> Judgement: ...


class ScoreJudge:
    """Rate a pair from plain samples of its prompt: ``S1`` (first concept) and ``S2`` from a `PairScorer`; the
    more the first concept trails the second, the higher the level: ``gap = S2 − S1`` compared with
    ``thresholds`` (four increasing gaps: below the first is level 1, above the last level 5)."""

    def __init__(
        self,
        sample: Callable[[ConceptPair], Sequence[Any]],
        scorer: Any,
        thresholds: Sequence[float] = (0.0, 0.02, 0.05, 0.1),
    ) -> None:
        if len(thresholds) != 4 or list(thresholds) != sorted(thresholds):
            raise ValueError("thresholds must be four increasing numbers")
        self.sample, self.scorer, self.thresholds = sample, scorer, tuple(thresholds)

    def judge(self, pair: ConceptPair) -> Judgement:
        s1, s2 = self.scorer.score_pair(self.sample(pair), pair)
        gap = s2 - s1
        level = 1 + sum(gap > t for t in self.thresholds)
        return Judgement(level, (s1, s2), f"gap {gap:.4f}")


def parse_json_list(text: str) -> list[Any]:
    """The first JSON list in an answer (code fences and chatter around it allowed)."""
    m = re.search(r"```(?:json)?\s*(.*?)```", text, flags=re.S)
    body = m.group(1) if m else text
    start, end = body.find("["), body.rfind("]")
    if start < 0 or end <= start:
        raise ValueError("no JSON list in the answer")
    value = json.loads(body[start : end + 1])
    if not isinstance(value, list):
        raise ValueError("the answer's JSON is not a list")
    return value


def _id(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


class MiningLog:
    """Append-only JSONL of records keyed by ``id``; reading it back is how a run resumes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    if n == len(self.path.read_text(encoding="utf-8").splitlines()):
                        continue  # a torn last line from an interrupted write: redo that record
                    raise PairFileError(f"{self.path}:{n} is not JSON; the mining log is corrupt") from None
                self.records[rec["id"]] = rec

    def get(self, rid: str) -> dict[str, Any] | None:
        return self.records.get(rid)

    def append(self, rec: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records[rec["id"]] = rec


@dataclass
class MiningResult:
    kept: list[ConceptPair]
    proposed: int
    unparseable: int
    llm_calls: int  # calls made in this run (a resumed run makes none for logged prompts)
    replayed: int  # records replayed from the log
    patterns: list[dict[str, str]] = field(default_factory=list)


def _ask(llm: LLM, log: MiningLog, stats: dict[str, int], kind: str, meta: dict[str, Any], user: str):
    """One logged LLM call: returns (answer, parsed list or None)."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    rid = _id(kind, messages)
    rec = log.get(rid)
    if rec is None:
        answer = llm.complete(messages)
        stats["llm_calls"] += 1
        rec = {"id": rid, "kind": kind, **meta, "llm": llm.name, "messages": messages, "answer": answer}
        try:
            rec["parsed"] = parse_json_list(answer)
        except ValueError as exc:
            rec["parsed"], rec["error"] = None, f"unparseable: {exc}"
        log.append(rec)
    else:
        stats["replayed"] += 1
    if rec.get("parsed") is None:
        stats["unparseable"] += 1
    return rec.get("parsed")


def _pairs_from(
    items: list[Any] | None, pattern: str, phase: int, stats: dict[str, int]
) -> list[ConceptPair]:
    out = []
    for item in items or []:
        try:
            out.append(ConceptPair.from_dict({**item, "pattern": pattern, "phase": phase}))
        except (PairFileError, TypeError):
            stats["unparseable"] += 1
    return out


def _patterns_from(items: list[Any] | None, stats: dict[str, int]) -> list[dict[str, str]]:
    out = []
    for item in items or []:
        if (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("description"), str)
        ):
            out.append({"name": item["name"], "description": item["description"]})
        else:
            stats["unparseable"] += 1
    return out


def mine_pairs(
    llm: LLM,
    seeds: Sequence[ConceptPair],
    judge: Judge,
    log_path: str | os.PathLike[str],
    *,
    pairs_per_pattern: int = 5,
    new_patterns: int = 2,
    blends: int = 1,
    phases: Sequence[int] = (2, 3, 4),
    min_level: int = 5,
    progress: Callable[[str], None] | None = None,
) -> MiningResult:
    """Run the mining phases (see the module docstring); resumable from ``log_path``."""
    if not seeds:
        raise PairFileError(
            "mining needs at least one seed pair (phase 1: expert pairs with a 'pattern' field)"
        )
    log = MiningLog(log_path)
    stats = {"llm_calls": 0, "replayed": 0, "unparseable": 0, "proposed": 0}
    by_pattern: dict[str, list[ConceptPair]] = {}
    for p in seeds:
        by_pattern.setdefault(str(p.extra.get("pattern", "seed")), []).append(p)
    patterns = [
        {"name": k, "description": f"like: {', '.join(q.prompt for q in v[:3])}"}
        for k, v in by_pattern.items()
    ]
    kept: list[ConceptPair] = []
    seen = {p.prompt.strip().lower() for p in seeds}

    def phase2(pattern: dict[str, str], phase: int) -> None:
        examples = [q.to_dict() for q in by_pattern.get(pattern["name"], [])[:3]]
        examples = [{f: e[f] for f in FIELDS} for e in examples]
        user = (
            f"LC-Mis pattern {pattern['name']!r}: {pattern['description']}\n"
            + (f"Known pairs: {json.dumps(examples, ensure_ascii=False)}\n" if examples else "")
            + f"Propose {pairs_per_pattern} new concept pairs of this pattern. {PAIR_FORMAT}"
        )
        items = _ask(llm, log, stats, "propose", {"phase": phase, "pattern": pattern["name"]}, user)
        for pair in _pairs_from(items, pattern["name"], phase, stats):
            key = pair.prompt.strip().lower()
            if key in seen:
                continue
            seen.add(key)
            stats["proposed"] += 1
            rid = _id("judge", pair.to_dict())
            rec = log.get(rid)
            if rec is None:
                j = judge.judge(pair)
                rec = {"id": rid, "kind": "judgement", "pair": pair.to_dict(), "level": j.level,
                       "scores": list(j.scores), "note": j.note}  # fmt: skip
                log.append(rec)
            else:
                stats["replayed"] += 1
            if progress:
                progress(f"phase {phase} {pattern['name']}: {pair.prompt} -> level {rec['level']}")
            if rec["level"] >= min_level:
                kept.append(ConceptPair.from_dict({**pair.to_dict(), "level": rec["level"]}))

    if 2 in phases:
        for pat in list(patterns):
            phase2(pat, 2)
    all_patterns = list(patterns)
    if 3 in phases and new_patterns > 0:
        user = (
            f"Known LC-Mis patterns: {json.dumps(patterns, ensure_ascii=False)}\n"
            f"Propose {new_patterns} new, different LC-Mis patterns. Answer with a JSON list of objects with the "
            "fields name and description."
        )
        fresh = _patterns_from(_ask(llm, log, stats, "new_patterns", {"phase": 3}, user), stats)
        for pat in fresh:
            phase2(pat, 3)
        all_patterns += fresh
    if 4 in phases and blends > 0 and len(all_patterns) >= 2:
        for b in range(blends):
            a, c = all_patterns[b % len(all_patterns)], all_patterns[(b + 1) % len(all_patterns)]
            user = (
                f"Blend these two LC-Mis patterns into one new pattern: {json.dumps([a, c], ensure_ascii=False)}\n"
                "Answer with a JSON list holding one object with the fields name and description."
            )
            for pat in _patterns_from(_ask(llm, log, stats, "blend", {"phase": 4, "blend": b}, user), stats):
                phase2(pat, 4)
                all_patterns.append(pat)
    return MiningResult(
        kept, stats["proposed"], stats["unparseable"], stats["llm_calls"], stats["replayed"], all_patterns
    )
