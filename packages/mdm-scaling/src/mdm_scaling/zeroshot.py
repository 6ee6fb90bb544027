"""Zero-shot evaluation by likelihood (Sec. 4.2, Table 1; official ``evaluate_diff.py``).

Tasks are JSONL files a user brings, one example per line:

- multiple choice: ``{"context": "...", "choices": ["...", "..."], "answer": 1}``: the choice with the highest
  log-likelihood of the continuation given the context wins (``acc``; ``acc_norm`` divides by its characters);
- greedy suffix (LAMBADA style): ``{"context": "...", "target": "..."}``: correct when greedy decoding of the
  target positions reproduces the target exactly.

Scorers:

- `MaskedLMScorer` for any masked model (an MDM of this package, a radd model, ...): ``"mc"`` is the Monte Carlo
  bound with only the continuation masked (``radd.estimate_nll`` with ``positions``), ``"chain_rule"`` reveals the
  continuation left to right (|target| passes in one batch); both optionally through unsupervised CFG
  (`UnsupervisedCFG`, the context dropped). Greedy suffix: reveal the single most confident token per pass.
- `CausalLMScorer` for the ARM: the exact chain-rule likelihood, greedy decoding with the KV cache.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mdm_scaling.guidance import UnsupervisedCFG

__all__ = [
    "OFFICIAL_TASK_SETTINGS",
    "CausalLMScorer",
    "Example",
    "MaskedLMScorer",
    "Task",
    "cloze_task",
    "encode_pair",
    "evaluate_task",
    "evaluate_tasks",
    "load_jsonl_task",
]

# Per-task likelihood method and CFG weight of the official evaluation script (reference notes).
OFFICIAL_TASK_SETTINGS: dict[str, dict[str, Any]] = {
    "lambada": {"method": "chain_rule", "cfg": 1.1, "greedy": True},
    "openbookqa": {"method": "chain_rule", "cfg": 1.6},
    "boolq": {"method": "chain_rule", "cfg": 1.6},
    "piqa": {"method": "chain_rule", "cfg": 0.6},
    "arc_easy": {"method": "mc", "cfg": 0.6},
    "siqa": {"method": "mc", "cfg": 0.6},
    "race": {"method": "mc", "cfg": 0.7},
    "hellaswag": {"method": "mc", "cfg": 0.7},
}


@dataclass(frozen=True)
class Example:
    context: str
    choices: tuple[str, ...] = ()
    answer: int = 0
    target: str | None = None  # greedy-suffix examples


@dataclass
class Task:
    name: str
    examples: list[Example]
    kind: str = "choice"  # "choice" | "greedy"
    settings: dict[str, Any] = field(default_factory=dict)


def load_jsonl_task(path: str | os.PathLike[str], name: str | None = None) -> Task:
    """Read a task file; every line must be of the same kind (multiple choice or greedy suffix)."""
    from mdm_scaling.data import read_jsonl

    p = Path(path)
    examples, kinds = [], set()
    for i, obj in read_jsonl(p, "task file"):
        if not isinstance(obj.get("context"), str):
            raise ValueError(f'{p}:{i}: each line needs a string "context"')
        if "choices" in obj:
            ch, ans = obj["choices"], obj.get("answer")
            if not isinstance(ch, list) or len(ch) < 2 or not all(isinstance(c, str) and c for c in ch):
                raise ValueError(f'{p}:{i}: "choices" must be a list of at least 2 non-empty strings')
            if not isinstance(ans, int) or not 0 <= ans < len(ch):
                raise ValueError(f'{p}:{i}: "answer" must be an index into "choices" (0..{len(ch) - 1})')
            examples.append(Example(obj["context"], tuple(ch), ans))
            kinds.add("choice")
        elif isinstance(obj.get("target"), str) and obj["target"]:
            examples.append(Example(obj["context"], target=obj["target"]))
            kinds.add("greedy")
        else:
            raise ValueError(
                f'{p}:{i}: need "choices" + "answer" (multiple choice) or "target" (greedy suffix)'
            )
    if not examples:
        raise ValueError(f"{p} holds no examples")
    if len(kinds) > 1:
        raise ValueError(f"{p} mixes multiple-choice and greedy-suffix lines; split them into two tasks")
    return Task(name or p.stem, examples, kinds.pop())


def _encode(tokenizer: Any, text: str) -> list[int]:
    ids = tokenizer.encode(text)
    return ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of context and continuation; trailing spaces of the context move to the continuation and the
    continuation is the tail of the joint encoding (as lm-evaluation-harness and the official script do)."""
    n = len(context) - len(context.rstrip())
    if n:
        continuation = context[-n:] + continuation
        context = context[:-n]
    whole = _encode(tokenizer, context + continuation)
    ctx = _encode(tokenizer, context)
    if whole[: len(ctx)] != ctx:  # a merge across the boundary: fall back to separate encodings
        return ctx, _encode(tokenizer, continuation)
    return ctx, whole[len(ctx) :]


def _as_row(ids: Sequence[int], device: torch.device) -> torch.Tensor:
    return torch.tensor(list(ids), dtype=torch.long, device=device)[None]


def _device_of(model: Any) -> torch.device:
    from radd.masked_model import model_device

    return model_device(model)


class MaskedLMScorer:
    """Likelihood and greedy prediction for any masked model (ids in [0, V], V = mask)."""

    def __init__(
        self,
        model: Any,
        *,
        method: str = "mc",
        num_samples: int = 128,
        estimator: str = "k",
        cfg: float = 0.0,
        batch_size: int = 64,
        mask_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        from radd.masked_model import resolve_mask_id

        if method not in ("mc", "chain_rule"):
            raise ValueError(f"unknown likelihood method {method!r}: use 'mc' or 'chain_rule'")
        self.model = model
        self.method = method
        self.num_samples = int(num_samples)
        self.estimator = estimator
        self.cfg = float(cfg)
        self.batch_size = int(batch_size)
        self.mask_id = resolve_mask_id(model, mask_id)
        self.generator = generator
        self.device = _device_of(model)

    def _net(self, prompt_len: int, total: int) -> Any:
        if self.cfg == 0:
            return self.model
        keep = torch.arange(total, device=self.device) < prompt_len
        return UnsupervisedCFG(self.model, keep, self.cfg, mask_id=self.mask_id)

    def _logp(self, net: Any, x: torch.Tensor) -> torch.Tensor:
        outs = [
            net(x[i : i + self.batch_size]).float().log_softmax(-1) for i in range(0, len(x), self.batch_size)
        ]
        return torch.cat(outs)

    @torch.no_grad()
    def loglikelihood(self, context: Sequence[int], target: Sequence[int]) -> float:
        """log p(target | context) (a lower bound for "mc"; exact chain-rule decomposition for "chain_rule")."""
        from radd.masked_model import eval_mode

        with eval_mode(self.model):  # dropout off: a likelihood is a property of the model, not of a draw
            return self._loglikelihood(context, target)

    def _loglikelihood(self, context: Sequence[int], target: Sequence[int]) -> float:
        import radd

        if not target:
            raise ValueError("the continuation encodes to zero tokens")
        P, T = len(context), len(target)
        seq = _as_row(list(context) + list(target), self.device)
        net = self._net(P, P + T)
        if self.method == "mc":
            pos = torch.arange(P + T, device=self.device) >= P
            nll = radd.estimate_nll(
                net,
                seq,
                self.num_samples,
                estimator=self.estimator,  # type: ignore[arg-type]
                generator=self.generator,
                positions=pos,
                batch_size=self.batch_size,
                mask_id=self.mask_id,
            )
            return -float(nll[0])
        # chain rule: row i sees target[:i] and predicts target[i] with target[i:] masked.
        rows = seq.repeat(T, 1)
        tri = torch.arange(T, device=self.device)[None, :] >= torch.arange(T, device=self.device)[:, None]
        rows[:, P:] = rows[:, P:].masked_fill(tri, self.mask_id)
        logp = self._logp(net, rows)
        idx = torch.arange(T, device=self.device)
        tgt = seq[0, P:]
        return float(logp[idx, P + idx, tgt].sum())

    @torch.no_grad()
    def greedy_match(self, context: Sequence[int], target: Sequence[int]) -> bool:
        """Reveal the target positions one at a time, most confident first (official
        ``suffix_greedy_prediction``); True when the result equals the target."""
        from radd.masked_model import eval_mode

        with eval_mode(self.model):
            return self._greedy_match(context, target)

    def _greedy_match(self, context: Sequence[int], target: Sequence[int]) -> bool:
        P, T = len(context), len(target)
        x = _as_row(list(context) + [self.mask_id] * T, self.device)
        net = self._net(P, P + T)
        for _ in range(T):
            logp = self._logp(net, x)[0, P:]
            masked = x[0, P:] == self.mask_id
            conf, tok = logp.max(-1)
            conf = conf.masked_fill(~masked, float("-inf"))
            j = int(conf.argmax())
            x[0, P + j] = tok[j]
        return x[0, P:].tolist() == list(target)


class CausalLMScorer:
    """Exact log-likelihood and greedy decoding for an `AutoregressiveLM`."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def loglikelihood(self, context: Sequence[int], target: Sequence[int]) -> float:
        if not context:
            raise ValueError("an ARM needs a non-empty context (prepend a BOS token)")
        if not target:
            raise ValueError("the continuation encodes to zero tokens")
        seq = _as_row(list(context) + list(target), self.device)
        was = self.model.training
        self.model.eval()
        try:
            logp = self.model(seq[:, :-1]).float().log_softmax(-1)[0]
        finally:
            self.model.train(was)
        P = len(context)
        idx = torch.arange(P - 1, seq.shape[1] - 1, device=self.device)
        return float(logp[idx, seq[0, P:]].sum())

    @torch.no_grad()
    def greedy_match(self, context: Sequence[int], target: Sequence[int]) -> bool:
        from mdm_scaling.generation import arm_generate

        out = arm_generate(self.model, _as_row(context, self.device), len(target), temperature=0.0)
        return out.tokens[0, len(context) :].tolist() == list(target)


def evaluate_task(
    scorer: Any, tokenizer: Any, task: Task, *, limit: int | None = None, progress: bool | None = None
) -> dict[str, Any]:
    """Accuracy of one task: ``acc`` and ``acc_norm`` (multiple choice) or ``acc`` (greedy suffix)."""
    from gen_common.cli import progress as bar

    exs = task.examples[:limit] if limit else task.examples
    correct = correct_norm = 0
    for ex in bar(exs, desc=task.name, enabled=progress):
        if task.kind == "greedy":
            ctx, tgt = encode_pair(tokenizer, ex.context, ex.target or "")
            correct += bool(scorer.greedy_match(ctx, tgt))
            continue
        lls, norms = [], []
        for choice in ex.choices:
            ctx, tgt = encode_pair(tokenizer, ex.context, choice)
            ll = scorer.loglikelihood(ctx, tgt)
            lls.append(ll)
            norms.append(ll / max(1, len(choice)))
        correct += int(max(range(len(lls)), key=lls.__getitem__) == ex.answer)
        correct_norm += int(max(range(len(norms)), key=norms.__getitem__) == ex.answer)
    n = len(exs)
    out: dict[str, Any] = {"task": task.name, "kind": task.kind, "n": n, "acc": correct / n}
    if task.kind == "choice":
        out["acc_norm"] = correct_norm / n
    return out


def evaluate_tasks(
    scorer: Any, tokenizer: Any, tasks: Iterable[Task], **kwargs: Any
) -> dict[str, dict[str, Any]]:
    return {t.name: evaluate_task(scorer, tokenizer, t, **kwargs) for t in tasks}


def cloze_task(
    text: str,
    n: int,
    *,
    context_chars: int = 24,
    target_chars: int = 6,
    num_choices: int = 4,
    seed: int = 0,
    name: str = "cloze",
) -> Task:
    """An offline multiple-choice task from any text: continue a passage with its true next ``target_chars``
    characters among ``num_choices − 1`` continuations taken from elsewhere in the text."""
    g = torch.Generator().manual_seed(seed)
    span = context_chars + target_chars
    if len(text) < span * (num_choices + 1):
        raise ValueError("text too short for this cloze task")
    exs = []
    for _ in range(n):
        starts = torch.randint(0, len(text) - span, (num_choices,), generator=g).tolist()
        ctx = text[starts[0] : starts[0] + context_chars]
        conts = [text[s + context_chars : s + span] for s in starts]
        if len(set(conts)) < num_choices:
            continue
        ans = int(torch.randint(0, num_choices, (), generator=g))
        conts[0], conts[ans] = conts[ans], conts[0]
        exs.append(Example(ctx, tuple(conts), ans))
    return Task(name, exs, "choice")
