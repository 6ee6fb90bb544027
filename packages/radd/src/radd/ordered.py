"""The ordered (any-order autoregressive) sampler (RADD §4, the official ``OrderedSampler``).

RADD's model is also an any-order autoregressive model (RADD Theorem 2): revealing one position at a time in a
fixed or random order, each drawn from p₀(xⁱ | revealed tokens), samples the model's joint distribution exactly
(when its conditionals are consistent). It costs one evaluation per generated token.
"""

from __future__ import annotations

from typing import Any

import torch

from gen_common.cli import progress as progress_bar
from gen_common.seeding import rand
from radd.categorical import filter_logits, sample_from_uniform
from radd.masked_model import eval_mode, model_device, resolve_mask_id
from radd.sampling import Given, SampleOutput, initial_tokens, scores_at

__all__ = ["generation_order", "sample_ordered"]


def generation_order(
    order: str | torch.Tensor | None,
    num_samples: int,
    length: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(N, L) permutations: ``"random"``/None (a uniform permutation per sequence), ``"forward"``, ``"backward"``,
    or a tensor of shape (L,) or (N, L)."""
    if order is None or (isinstance(order, str) and order == "random"):
        keys = rand((num_samples, length), generator, device)
        return keys.argsort(dim=1)
    if isinstance(order, str):
        ar = torch.arange(length, device=device)
        if order == "forward":
            return ar.expand(num_samples, length).clone()
        if order == "backward":
            return ar.flip(0).expand(num_samples, length).clone()
        raise ValueError(
            f"unknown order {order!r}: use 'random', 'forward', 'backward' or a permutation tensor"
        )
    o = torch.as_tensor(order, dtype=torch.long, device=device)
    o = o.expand(num_samples, length) if o.ndim == 1 else o
    if tuple(o.shape) != (num_samples, length) or not bool(
        (o.sort(dim=1).values == torch.arange(length, device=device)).all()
    ):
        raise ValueError(f"order must be a permutation of range({length}) (shape (L,) or (N, L))")
    return o


@torch.no_grad()
def sample_ordered(
    model: Any,
    num_samples: int,
    length: int,
    *,
    order: str | torch.Tensor | None = "random",
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    prefix: Any = None,
    suffix: Any = None,
    given: Given | None = None,
    mask_id: int | None = None,
    device: torch.device | str | None = None,
    progress: bool | None = None,
) -> SampleOutput:
    """Reveal the free positions one at a time in ``order`` (fixed tokens are skipped), one evaluation each."""
    if not temperature >= 0 or temperature == float("inf"):  # NaN fails the first test
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    mid = resolve_mask_id(model, mask_id)
    dev = torch.device(device) if device is not None else model_device(model)
    x, keep = initial_tokens(num_samples, length, mid, prefix=prefix, suffix=suffix, given=given, device=dev)
    N, L = x.shape
    perm = generation_order(order, N, L, generator, dev)
    # Free positions first, in their order: a stable sort on "is kept".
    kept_in_order = keep.gather(1, perm)
    perm = perm.gather(1, kept_in_order.long().argsort(dim=1, stable=True))
    free = (~keep).sum(dim=1)
    steps = int(free.max()) if N else 0
    calls = 0
    with eval_mode(model):
        for i in progress_bar(range(steps), total=steps, desc="sample", enabled=progress):
            u = rand((N,), generator, dev)
            rows = (free > i).nonzero().flatten()
            col = perm[rows, i]
            select = torch.zeros(rows.numel(), L, dtype=torch.bool, device=dev)
            select[torch.arange(rows.numel(), device=dev), col] = True
            logits = scores_at(model, x[rows], select, mid)  # one position per row: the head runs only there
            calls += 1
            if temperature == 0:
                ids = logits.float().argmax(-1)
            else:
                lp = filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p)
                ids, _ = sample_from_uniform(lp, u[rows])
            x[rows, col] = ids
    return SampleOutput(
        tokens=x,
        nfe=float(free.double().mean()),
        nfe_per_sequence=free.cpu(),
        steps=steps,
        model_calls=calls,
        expected_nfe=float(free.double().mean()),
    )
