"""Unsupervised classifier-free guidance (Sec. 5, Eq. (5)): the unconditional input is the same sequence with the
prompt replaced by mask tokens, so a model trained without prompt dropout can be guided.

    guided logits = u + (1 + w)·(c − u)        i.e.   p ∝ p_c^(1+w) / p_u^w

`UnsupervisedCFG` wraps a masked model into another masked model, so radd's sampler (with its cache) and its
likelihood estimators use it unchanged. Both passes run as one batch of 2B rows.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["UnsupervisedCFG", "cfg_combine"]


def cfg_combine(cond: torch.Tensor, uncond: torch.Tensor, w: float) -> torch.Tensor:
    """u + (1 + w)(c − u), in float32; ``w = 0`` returns ``cond`` itself (exactly the conditional model)."""
    if w == 0:
        return cond
    c, u = cond.float(), uncond.float()
    return u + (1.0 + w) * (c - u)


class UnsupervisedCFG:
    """A masked model whose output is the CFG combination of ``model`` with and without the prompt.

    ``prompt``: bool (L,) positions shared by every row (e.g. a common prefix; robust to radd's row-subset cache),
    bool (B, L) per row (the wrapper must then be called with all B rows), or an int prefix length.
    """

    def __init__(
        self, model: Any, prompt: torch.Tensor | int, w: float, *, mask_id: int | None = None
    ) -> None:
        from radd.masked_model import resolve_mask_id

        if w < 0:
            raise ValueError(f"guidance weight w must be >= 0 (w = 0 is the conditional model), got {w}")
        self.model = model
        self.w = float(w)
        self.mask_id = resolve_mask_id(model, mask_id)
        self.prompt = prompt
        self.calls = 0  # network passes (a guided call costs two)

    def __getattr__(self, name: str) -> Any:
        # `config`, `eval`, `parameters`, ... of the wrapped model (radd reads its device and mode through these).
        if name == "model":
            raise AttributeError(name)
        return getattr(self.model, name)

    def prompt_mask(self, x: torch.Tensor) -> torch.Tensor:
        B, L = x.shape
        p = self.prompt
        if isinstance(p, int):
            if not 0 <= p <= L:
                raise ValueError(f"prompt length {p} outside [0, {L}]")
            return (torch.arange(L, device=x.device) < p).expand(B, L)
        p = p.to(x.device).bool()
        if p.ndim == 1:
            if p.shape[0] != L:
                raise ValueError(f"prompt mask has length {p.shape[0]}, input has {L}")
            return p.expand(B, L)
        if tuple(p.shape) != (B, L):
            raise ValueError(
                f"a per-row prompt mask {tuple(p.shape)} needs calls with all rows, got input {(B, L)}; "
                "use a shared (L,) mask or an int prefix length with cached samplers"
            )
        return p

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.w == 0:
            self.calls += 1
            return self.model(x)
        uncond_in = x.masked_fill(self.prompt_mask(x), self.mask_id)
        out = self.model(torch.cat([x, uncond_in], dim=0))
        self.calls += 2
        cond, uncond = out.chunk(2, dim=0)
        return cfg_combine(cond, uncond, self.w)
