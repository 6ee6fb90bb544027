"""The masked-model contract shared by the losses, the likelihood estimators and the samplers.

A masked model is any callable ``model(x)`` with ``x`` a LongTensor (B, L) of ids in [0, V], where id V is the
mask, returning (B, L, V) logits or log-probabilities over the V real tokens. RADD's Theorem 1 is what makes this
enough: the concrete score of the absorbing process is a time-dependent scalar times the clean-data conditional
p₀(xⁱ | unmasked tokens), so the network needs no time input (RADD Eq. (6)).

The helpers here resolve the mask id, check inputs, and turn any output into float32 log-probabilities
(log_softmax in float32 leaves log-probabilities unchanged and keeps bf16/fp16 logits from producing −∞).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = [
    "MaskedModel",
    "check_tokens",
    "eval_mode",
    "log_probs",
    "model_device",
    "resolve_mask_id",
    "resolve_positions",
]

MaskedModel = Callable[[torch.Tensor], torch.Tensor]


def resolve_mask_id(model: Any, mask_id: int | None = None) -> int:
    """The mask id: the argument, else ``model.mask_id``, else ``model.config.vocab_size`` (mask id = V)."""
    if mask_id is not None:
        if int(mask_id) < 1:
            raise ValueError(f"mask_id must be >= 1 (it equals the number of real tokens), got {mask_id}")
        return int(mask_id)
    for owner in (model, getattr(model, "model", None)):  # NFECounter and similar wrappers keep `.model`
        if owner is None:
            continue
        mid = getattr(owner, "mask_id", None)
        if mid is not None:
            return int(mid)
        cfg = getattr(owner, "config", None)
        vocab = getattr(cfg, "vocab_size", None)
        if vocab is not None:
            return int(vocab)
    raise ValueError(
        "cannot tell the mask id of this model: pass mask_id=V (the number of real tokens), "
        "or give the model a `mask_id` attribute"
    )


def model_device(model: Any, default: torch.device | str = "cpu") -> torch.device:
    """The device of the model's first parameter (or ``default`` for plain callables)."""
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
        for b in model.buffers():
            return b.device
    return torch.device(default)


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Evaluate with dropout off (the cache relies on a deterministic model), restoring the mode afterwards."""
    if isinstance(model, torch.nn.Module) and model.training:
        model.eval()
        try:
            yield
        finally:
            model.train()
    else:
        yield


def check_tokens(x: torch.Tensor, mask_id: int, *, allow_mask: bool, name: str = "x") -> torch.Tensor:
    """Validate a (B, L) LongTensor of ids in [0, V) (or [0, V] when masks are allowed)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(x).__name__}")
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, length), got {tuple(x.shape)}")
    if x.dtype.is_floating_point or x.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer token ids, got dtype {x.dtype}")
    if x.numel():
        lo, hi = int(x.min()), int(x.max())
        top = mask_id if allow_mask else mask_id - 1
        if lo < 0 or hi > top:
            what = f"[0, {mask_id}] (id {mask_id} is the mask)" if allow_mask else f"[0, {mask_id - 1}]"
            raise ValueError(
                f"{name} holds token ids outside {what}: min {lo}, max {hi}; "
                "was it encoded with the model's tokenizer?"
            )
    return x.long()


def resolve_positions(positions: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """A bool (B, L) mask of the positions to score/generate; ``None`` means all, (L,) is broadcast."""
    if positions is None:
        return torch.ones_like(x, dtype=torch.bool)
    pos = torch.as_tensor(positions, device=x.device)
    if pos.dtype != torch.bool:
        raise ValueError("positions must be a bool mask (True = scored)")
    if pos.ndim == 1:
        pos = pos[None].expand_as(x)
    if tuple(pos.shape) != tuple(x.shape):
        raise ValueError(
            f"positions has shape {tuple(pos.shape)}, expected {tuple(x.shape)} or ({x.shape[1]},)"
        )
    if not bool(pos.any(dim=1).all()):
        raise ValueError("every sequence needs at least one scored position")
    return pos


def log_probs(model: MaskedModel, x: torch.Tensor, vocab_size: int | None = None) -> torch.Tensor:
    """``model(x)`` as float32 log-probabilities over the real tokens, with its shape checked."""
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.ndim != 3 or tuple(out.shape[:2]) != tuple(x.shape):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"a masked model must return (batch, length, V) scores for input {tuple(x.shape)}; got {got}"
        )
    if vocab_size is not None and out.shape[-1] != vocab_size:
        raise ValueError(
            f"the model predicts {out.shape[-1]} classes but the mask id is {vocab_size}; "
            "the mask id must equal the number of real tokens V"
        )
    # at least float32 (float64 outputs, e.g. the exact toys, keep their precision)
    return torch.log_softmax(out if out.dtype == torch.float64 else out.float(), dim=-1)
