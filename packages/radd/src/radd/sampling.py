"""Diffusion sampling for any time-independent masked model, with RADD's cache (RADD §3.3, Algorithm 1–2).

A time grid t_k = 1 − k/steps runs from 1 to 0. In step t → s every masked token is revealed

- ``remasking="random"`` (RADD's sampler; SMDM's "origin"): independently with probability
  (e^{−σ̄(s)} − e^{−σ̄(t)})/(1 − e^{−σ̄(t)}) (``method="analytic"``, Tweedie τ-leaping) or
  Δt·σ̄′(t)e^{−σ̄(t)}/(1 − e^{−σ̄(t)}) (``method="euler"``); for the log-linear schedule both equal (t − s)/t;
- ``remasking="confidence"`` (SMDM/LLaDA): the int(#mask · rate) most confident predictions are revealed,

with the value drawn from p₀(· | unmasked tokens); everything still masked is revealed in the last step.

The cache: the network has no time input, so its output for a sequence that did not change is still exact.
With ``cache=True`` a row is evaluated only when it will reveal a token in this step (every evaluated row reveals a
token, so such a row has always changed since its last evaluation: no output is ever reused, and none is kept);
those rows are gathered into one smaller batch. The output head is computed only where it is read: at the
revealed positions (random remasking) or the active masked positions (confidence), through `scores_at`. The expected number of evaluations per sequence is
then exactly ``expected_nfe(steps, length)`` = n(1 − (1 − 1/n)^l) (each token's reveal step is uniform over the n
steps), against n without the cache. All randomness of a step is drawn for the whole batch every step, so the
cached and uncached samplers return identical tokens under the same generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from gen_common.cli import progress as progress_bar
from gen_common.seeding import rand
from radd.categorical import filter_logits, sample_from_uniform
from radd.masked_model import eval_mode, model_device, resolve_mask_id
from radd.schedules import LogLinearSchedule, NoiseSchedule, get_schedule, mask_prob

__all__ = ["SampleOutput", "expected_nfe", "initial_tokens", "reveal_rates", "sample", "scores_at"]

Given = tuple[torch.Tensor | Sequence[int], torch.Tensor | Sequence[bool]]


@dataclass
class SampleOutput:
    """``tokens`` (N, L); ``nfe`` = network evaluations per sequence averaged over the batch."""

    tokens: torch.Tensor
    nfe: float
    nfe_per_sequence: torch.Tensor
    steps: int
    model_calls: int
    expected_nfe: float | None = None


def expected_nfe(steps: int | float, length: int | float) -> float:
    """E[NFE] of the cached sampler: steps · (1 − (1 − 1/steps)^length), the expected number of distinct steps
    in which at least one of ``length`` tokens is revealed (RADD §3.3)."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    return float(steps * (1.0 - (1.0 - 1.0 / steps) ** length))


def reveal_rates(
    steps: int, method: str = "analytic", schedule: NoiseSchedule | str | None = None
) -> torch.Tensor:
    """Probability that a still-masked token is revealed in each step (float64, length ``steps``; last = 1)."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    sched = get_schedule(schedule)
    t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    pt, ps = mask_prob(sched, t[:-1]), mask_prob(sched, t[1:])
    if method in ("analytic", "tweedie"):
        rate = (pt - ps) / pt
    elif method == "euler":
        dt = 1.0 / steps
        rate = dt * sched.rate(t[:-1]) * torch.exp(-sched.total(t[:-1])) / pt
    else:
        raise ValueError(f"unknown method {method!r}: use 'analytic' or 'euler'")
    rate = rate.clamp(0.0, 1.0)
    rate[-1] = 1.0
    return rate


def _as_ids(v: Any, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(v, dtype=torch.long, device=device)


def initial_tokens(
    num_samples: int,
    length: int,
    mask_id: int,
    *,
    prefix: Any = None,
    suffix: Any = None,
    given: Given | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The all-mask start with fixed tokens filled in; returns (x (N, L), keep (N, L) bool).

    ``prefix``/``suffix``: 1-D ids placed at the start/end; ``given`` = (tokens, keep) with shape (L,) or (N, L)
    fixes arbitrary positions (infilling). Fixed tokens are never resampled.
    """
    if num_samples < 1 or length < 1:
        raise ValueError("num_samples and length must be >= 1")
    device = torch.device(device)
    x = torch.full((num_samples, length), mask_id, dtype=torch.long, device=device)
    keep = torch.zeros(num_samples, length, dtype=torch.bool, device=device)
    if given is not None:
        if not isinstance(given, (tuple, list)) or len(given) != 2:
            raise ValueError("given must be a pair (tokens, keep_mask)")
        tok, kp = _as_ids(given[0], device), torch.as_tensor(given[1], device=device)
        if kp.dtype != torch.bool:
            raise ValueError("the keep mask of `given` must be bool")
        if tok.shape[-1] != length or kp.shape[-1] != length:
            raise ValueError(
                f"given tokens/keep mask must have length {length}, got {tuple(tok.shape)}, {tuple(kp.shape)}"
            )
        for t in (tok, kp):
            if t.ndim > 2 or (t.ndim == 2 and t.shape[0] not in (1, num_samples)):
                raise ValueError(
                    f"given tokens/keep mask must have shape ({length},) or ({num_samples}, {length})"
                )
        tok, kp = tok.expand(num_samples, length), kp.expand(num_samples, length)
        x = torch.where(kp, tok, x)
        keep |= kp
    for ids, at_end in ((prefix, False), (suffix, True)):
        if ids is None:
            continue
        ids = _as_ids(ids, device).reshape(-1)
        n = ids.numel()
        if n > length:
            raise ValueError(f"{'suffix' if at_end else 'prefix'} has {n} tokens, more than length {length}")
        sl = slice(length - n, length) if at_end else slice(0, n)
        x[:, sl] = ids
        keep[:, sl] = True
    fixed = x[keep]
    if fixed.numel() and (int(fixed.min()) < 0 or int(fixed.max()) >= mask_id):
        raise ValueError(f"fixed tokens must be real token ids in [0, {mask_id - 1}]")
    return x, keep


def scores_at(model: Any, x: torch.Tensor, select: torch.Tensor, mask_id: int) -> torch.Tensor:
    """The model's scores over the real tokens at the True positions of ``select`` (B, L): (n_selected, V).

    A model with ``supports_positions = True`` (e.g. `radd.RADD`) is called as ``model(x, positions=select)`` and
    computes its output head only there; any other masked model is called as ``model(x)`` and indexed.
    """
    n, (rows, length) = int(select.sum()), x.shape
    if getattr(model, "supports_positions", False):
        out = model(x, positions=select)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n, mask_id):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"model(x, positions=mask) must return ({n}, {mask_id}) scores, got {got}")
        return out
    out = model(x)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (rows, length, mask_id):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"the model must return ({rows}, {length}, {mask_id}) scores over the real tokens (mask id = V), got {got}"
        )
    return out[select]


@torch.no_grad()
def sample(
    model: Any,
    num_samples: int,
    length: int,
    steps: int,
    *,
    cache: bool = True,
    generator: torch.Generator | None = None,
    method: Literal["analytic", "euler"] = "analytic",
    remasking: Literal["random", "confidence"] = "random",
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    prefix: Any = None,
    suffix: Any = None,
    given: Given | None = None,
    mask_id: int | None = None,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    schedule: NoiseSchedule | str | None = None,
    block_length: int | None = None,
) -> SampleOutput:
    """Sample ``num_samples`` sequences of ``length`` tokens in ``steps`` steps (RADD Algorithm 1/2).

    ``block_length`` (dividing ``length``; ``steps`` a multiple of the number of blocks) samples
    semi-autoregressively as LLaDA does: blocks left to right, each denoised in steps/num_blocks steps with the
    chosen remasking, and no token of a block is revealed before every token of the previous block is.
    ``temperature=0`` takes the most likely token. Returns a `SampleOutput` with the tokens and the measured
    NFE per sequence (and its expectation for random remasking under the log-linear schedule).
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    if remasking not in ("random", "confidence"):
        raise ValueError(f"unknown remasking {remasking!r}: use 'random' or 'confidence'")
    if not temperature >= 0 or temperature == float("inf"):  # NaN fails the first test
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    mid = resolve_mask_id(model, mask_id)
    dev = torch.device(device) if device is not None else model_device(model)
    x, keep = initial_tokens(num_samples, length, mid, prefix=prefix, suffix=suffix, given=given, device=dev)
    N, L = x.shape
    if block_length is None:
        block_length = L
    if not 1 <= int(block_length) <= L or L % int(block_length):
        raise ValueError(f"block_length must divide the length {L}, got {block_length}")
    num_blocks = L // int(block_length)
    if steps % num_blocks:
        raise ValueError(f"steps ({steps}) must be a multiple of the number of blocks ({num_blocks})")
    per_block = steps // num_blocks
    rates = reveal_rates(per_block, method, schedule).tolist()
    nfe_rows = torch.zeros(N, dtype=torch.long, device=dev)
    calls = 0
    all_rows = torch.arange(N, device=dev)
    column = torch.arange(L, device=dev)

    def draw(logits: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if temperature == 0:
            lp = torch.log_softmax(logits.float(), -1)
            p, ids = lp.max(-1)
            return ids, p.exp()
        return sample_from_uniform(
            filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p), u
        )

    bar = iter(progress_bar(range(steps), total=steps, desc="sample", enabled=progress))
    with eval_mode(model):
        for b in range(num_blocks):
            in_block = (column >= b * block_length) & (column < (b + 1) * block_length)
            for k in range(per_block):
                next(bar, None)
                active = (x == mid) & in_block  # the masked tokens this step may reveal
                # Whole-batch draws every step, whatever gets evaluated: cached ≡ uncached.
                u_reveal = rand((N, L), generator, dev, torch.float64)
                u_value = rand((N, L), generator, dev)
                if remasking == "random":
                    select = active & (
                        u_reveal < rates[k]
                    )  # the head is needed only where a token is revealed
                    need = select.any(dim=1)
                else:
                    n_active = active.sum(dim=1)
                    last = k == per_block - 1
                    count = n_active if last else torch.floor(n_active.double() * rates[k] + 1e-9).long()
                    need = count > 0
                    select = active & need[:, None]  # the ranking needs every masked position of the row
                # A row that is evaluated always reveals a token, so a row that needs a reveal has always changed
                # since its last evaluation: the cache never reuses an output, it only skips rows (RADD §3.3).
                rows = need.nonzero().flatten() if cache else all_rows
                if rows.numel():
                    out = scores_at(model, x[rows], select[rows], mid)
                    nfe_rows[rows] += 1
                    calls += 1
                if not bool(need.any()):
                    continue
                r, c = select.nonzero(as_tuple=True)  # row-major: the order of `out`
                ids, conf = draw(out, u_value[r, c])
                if remasking == "random":
                    x[r, c] = ids
                else:
                    confidence = torch.full((N, L), -1.0, dtype=conf.dtype, device=dev)
                    confidence[r, c] = conf
                    cand = x.clone()
                    cand[r, c] = ids
                    ranks = confidence.argsort(dim=1, descending=True, stable=True).argsort(dim=1)
                    chosen = (ranks < count[:, None]) & active
                    x = torch.where(chosen, cand, x)
    free = (~keep).sum(dim=1).double()
    exp_nfe = None
    if remasking == "random" and num_blocks == 1 and isinstance(get_schedule(schedule), LogLinearSchedule):
        exp_nfe = float(torch.tensor([expected_nfe(steps, f) for f in free.tolist()]).mean())
    return SampleOutput(
        tokens=x,
        nfe=float(nfe_rows.double().mean()),
        nfe_per_sequence=nfe_rows.cpu(),
        steps=steps,
        model_calls=calls,
        expected_nfe=exp_nfe if cache else float(steps),
    )
