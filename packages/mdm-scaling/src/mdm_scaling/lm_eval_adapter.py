"""Adapter for lm-evaluation-harness (optional: ``pip install "mdm-scaling[lm-eval]"``), so the benchmarks of the
paper's Table 1 run through the harness with this package's scorers (the official ``evaluate_diff.py`` registers
such a model too).

    from mdm_scaling.lm_eval_adapter import make_lm_eval_model
    lm = make_lm_eval_model(MaskedLMScorer(model, method="chain_rule", cfg=1.6), tokenizer)
    lm_eval.simple_evaluate(model=lm, tasks=["openbookqa"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mdm_scaling.zeroshot import encode_pair

__all__ = ["loglikelihood_requests", "make_lm_eval_model"]


def loglikelihood_requests(scorer: Any, tokenizer: Any, requests: Sequence[Any]) -> list[tuple[float, bool]]:
    """``(log-likelihood, is_greedy)`` for harness requests whose ``.args`` are ``(context, continuation)``."""
    out = []
    for req in requests:
        context, continuation = req.args[0], req.args[1]
        ctx, tgt = encode_pair(tokenizer, context, continuation)
        ll = scorer.loglikelihood(ctx, tgt)
        out.append((float(ll), bool(scorer.greedy_match(ctx, tgt))))
    return out


def make_lm_eval_model(scorer: Any, tokenizer: Any, *, greedy: bool = True) -> Any:
    """An ``lm_eval.api.model.LM`` backed by a `MaskedLMScorer` or `CausalLMScorer`.

    ``greedy=False`` skips the greedy-suffix check (it costs |target| passes per request and only LAMBADA-style
    tasks read it).
    """
    try:
        from lm_eval.api.model import LM
    except ImportError as exc:
        raise ImportError(
            'the lm-evaluation-harness adapter needs lm-eval: pip install "mdm-scaling[lm-eval]"'
        ) from exc

    class _Adapter(LM):
        def __init__(self) -> None:
            super().__init__()

        def loglikelihood(self, requests):  # type: ignore[override]
            if greedy:
                return loglikelihood_requests(scorer, tokenizer, requests)
            return [
                (float(scorer.loglikelihood(*encode_pair(tokenizer, r.args[0], r.args[1]))), False)
                for r in requests
            ]

        def loglikelihood_rolling(self, requests):  # type: ignore[override]
            raise NotImplementedError(
                "rolling (perplexity) tasks: use `mdm-scaling` validation losses instead"
            )

        def generate_until(self, requests):  # type: ignore[override]
            raise NotImplementedError("generation tasks: use mdm_scaling.generation (radd.sample) directly")

    return _Adapter()
