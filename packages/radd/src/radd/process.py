"""The absorbing (masking) forward process and the time samplers of the losses (RADD §2, Eq. (1)–(3)).

Each token is replaced by the mask independently with probability π, or exactly k tokens are masked (the
any-order autoregressive form). Positions outside ``positions`` stay visible: that is how a continuation is scored
given a prompt.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["mask_exactly", "mask_independently", "uniform_draws"]

TimeSampler = Literal["stratified", "independent"]


def uniform_draws(
    n: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    sampler: TimeSampler = "stratified",
    groups: int = 1,
) -> torch.Tensor:
    """``n`` draws u ∈ [0, 1), each marginally uniform.

    ``"stratified"`` is VDM's low-discrepancy sampler u_i = (u₀ + i/n) mod 1 (one u₀ per group of ``n // groups``
    consecutive draws), which lowers the variance of a batch mean without biasing it; ``"independent"`` draws i.i.d.
    """
    gdev = generator.device if generator is not None else torch.device("cpu")
    if sampler == "independent":
        return torch.rand(n, generator=generator, device=gdev, dtype=torch.float64).to(device)
    if sampler != "stratified":
        raise ValueError(f"unknown time sampler {sampler!r}: use 'stratified' or 'independent'")
    if n % groups:
        raise ValueError("n must be a multiple of groups")
    per = n // groups
    u0 = torch.rand(groups, 1, generator=generator, device=gdev, dtype=torch.float64)
    offsets = torch.arange(per, device=gdev, dtype=torch.float64) / per
    return torch.remainder(u0 + offsets, 1.0).reshape(n).to(device)


def mask_independently(
    x: torch.Tensor,
    prob: torch.Tensor,
    mask_id: int,
    generator: torch.Generator | None = None,
    positions: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask each (scored) token with probability ``prob`` (one value per sequence). Returns (x_t, masked)."""
    gdev = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(x.shape, generator=generator, device=gdev).to(x.device)
    masked = u < prob.reshape(-1, 1).to(device=x.device, dtype=u.dtype)
    if positions is not None:
        masked &= positions
    return torch.where(masked, mask_id, x), masked


def mask_exactly(
    x: torch.Tensor,
    k: torch.Tensor,
    mask_id: int,
    generator: torch.Generator | None = None,
    positions: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask exactly ``k[b]`` uniformly chosen (scored) positions of sequence b, for all rows at once.

    Random keys rank the positions (unscored ones rank last), so the first k of each row form a uniform k-subset.
    """
    gdev = generator.device if generator is not None else torch.device("cpu")
    keys = torch.rand(x.shape, generator=generator, device=gdev).to(x.device)
    if positions is not None:
        keys = torch.where(positions, keys, 2.0)
    ranks = keys.argsort(dim=1).argsort(dim=1)
    masked = ranks < k.reshape(-1, 1).to(x.device)
    return torch.where(masked, mask_id, x), masked
