"""The four RADD training losses (RADD §3.2–§4, Eq. (9)–(12)); all have the same expectation (up to the ε-floors
noted below), an upper bound on −log p_θ(x).

Every loss takes a masked model (see `radd.masked_model`), clean ids ``x`` (B, L) and returns the per-sequence loss
in nats (B,). ``positions`` restricts masking to some positions (the rest stay visible): the same losses then
bound the conditional −log p(x_positions | x_rest). ``u`` (B,) overrides the uniform draw behind t, λ or k, which
is how `radd.estimate_nll` stratifies many draws of one sequence.

Numerics: the model output goes through log_softmax in float32 (bf16/fp16 log-probabilities are what made the
official λ-DCE report −∞), and t and λ have floors so that no weight divides by zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from radd.masked_model import check_tokens, eval_mode, log_probs, resolve_mask_id, resolve_positions
from radd.process import TimeSampler, mask_exactly, mask_independently, uniform_draws
from radd.schedules import NoiseSchedule, dce_weight, get_schedule, mask_prob

__all__ = ["LOSSES", "get_loss", "k_dce_loss", "lambda_dce_loss", "masked_nll", "t_dce_loss", "t_dse_loss"]


def masked_nll(
    model: Any, x0: torch.Tensor, x_t: torch.Tensor, masked: torch.Tensor, mask_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """−log p_θ(x0ⁱ | x_t) at the masked positions (0 elsewhere), shape (B, L), and the log-probs (B, L, V)."""
    logp = log_probs(model, x_t, mask_id)
    tok = logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
    return torch.where(masked, -tok, torch.zeros_like(tok)), logp


def _prepare(
    model: Any, x: torch.Tensor, positions: Any, mask_id: int | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    mid = resolve_mask_id(model, mask_id)
    x = check_tokens(x, mid, allow_mask=False)
    return x, resolve_positions(positions, x), mid


def _draws(
    u: torch.Tensor | None,
    n: int,
    generator: torch.Generator | None,
    device: torch.device,
    sampler: TimeSampler,
) -> torch.Tensor:
    if u is None:
        return uniform_draws(n, generator, device, sampler)
    u = torch.as_tensor(u, dtype=torch.float64, device=device).reshape(-1)
    if u.numel() != n:
        raise ValueError(f"u must hold one draw per sequence ({n}), got {u.numel()}")
    return u


def _t_draw(
    model: Any,
    x: torch.Tensor,
    generator: torch.Generator | None,
    schedule: NoiseSchedule,
    t_min: float,
    sampler: TimeSampler,
    positions: Any,
    mask_id: int | None,
    u: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    x, pos, mid = _prepare(model, x, positions, mask_id)
    if not 0.0 <= t_min < 1.0:
        raise ValueError("t_min must be in [0, 1)")
    uu = _draws(u, x.shape[0], generator, x.device, sampler)
    # t ~ U(t_min, 1) as in the official code (sampling_eps = 1e-3): t = 0 would give weight 1/0.
    t = (t_min + (1.0 - t_min) * uu).clamp_min(1e-12)
    x_t, masked = mask_independently(x, mask_prob(schedule, t), mid, generator, pos)
    return x, x_t, masked, t, pos, mid


def t_dce_loss(
    model: Any,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    schedule: NoiseSchedule | str | None = None,
    t_min: float = 1e-3,
    sampler: TimeSampler = "stratified",
    positions: torch.Tensor | None = None,
    mask_id: int | None = None,
    u: torch.Tensor | None = None,
) -> torch.Tensor:
    """t-DCE (RADD Eq. (10)): σ̄′(t)/(e^{σ̄(t)} − 1) · Σ_{masked i} −log p_θ(xⁱ | x_t), t ~ U(t_min, 1).

    The official code adds the model-independent term log(e^{σ̄} − 1) per masked token (mean ≈ 0); it is left out,
    so this is exactly the DCE bound. Expectation: (1/(1−t_min)) ∫_{π(t_min)}^{π(1)} f(π)/π dπ with
    f(π) = E[Σ_masked −log p] at mask probability π (see `radd.exact.dce_integral`).
    """
    sched = get_schedule(schedule)
    x, x_t, masked, t, _, mid = _t_draw(model, x, generator, sched, t_min, sampler, positions, mask_id, u)
    nll, _ = masked_nll(model, x, x_t, masked, mid)
    return dce_weight(sched, t).float() * nll.sum(dim=1).float()


def t_dse_loss(
    model: Any,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    schedule: NoiseSchedule | str | None = None,
    t_min: float = 1e-3,
    sampler: TimeSampler = "stratified",
    positions: torch.Tensor | None = None,
    mask_id: int | None = None,
    u: torch.Tensor | None = None,
) -> torch.Tensor:
    """t-DSE (RADD Eq. (9)): SEDD's denoising score entropy with the reparameterised score
    s_θ(x_t)_{i,v} = c(t)·p_θ(v | x_t), c(t) = 1/(e^{σ̄(t)} − 1) (RADD Theorem 1).

    Per masked position: σ̄′(t)·[Σ_v s_v − c·log s_{x⁰} + c(log c − 1)], where c is also the true ratio
    p_t(x̂)/p_t(x) for x̂ⁱ = x⁰ⁱ. For a normalised p_θ the terms reduce to the t-DCE term, so t-DSE and t-DCE agree
    draw by draw (tested); the scalar algebra runs in float64 so that c ≈ 1/t does not cost precision.
    """
    sched = get_schedule(schedule)
    x, x_t, masked, t, _, mid = _t_draw(model, x, generator, sched, t_min, sampler, positions, mask_id, u)
    nll, logp = masked_nll(model, x, x_t, masked, mid)
    total = sched.total(t)
    log_c = -torch.log(torch.expm1(total)).reshape(-1, 1)  # float64
    c = log_c.exp()
    sum_p = logp.exp().sum(dim=-1).double()  # Σ_v p_θ(v | x_t), = 1 up to rounding
    log_p = -nll.double()
    per_token = c * sum_p - c * (log_c + log_p) + c * (log_c - 1.0)
    per_token = torch.where(masked, per_token, torch.zeros_like(per_token))
    return (sched.rate(t) * per_token.sum(dim=1)).float()


def lambda_dce_loss(
    model: Any,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    eps: float = 1e-3,
    sampler: TimeSampler = "stratified",
    positions: torch.Tensor | None = None,
    mask_id: int | None = None,
    u: torch.Tensor | None = None,
) -> torch.Tensor:
    """λ-DCE (RADD Eq. (11)): mask each token with probability λ, loss = Σ_{masked} −log p_θ(xⁱ | x_λ) / λ.

    λ = eps + (1 − eps)·u as in SMDM (the floor keeps the variance finite: with λ → 0 a single masked token would
    be weighted 1/λ). Expectation: (1/(1−eps)) ∫_eps^1 f(λ)/λ dλ; ``eps=0`` gives the unfloored RADD estimator.
    """
    x, pos, mid = _prepare(model, x, positions, mask_id)
    if not 0.0 <= eps < 1.0:
        raise ValueError("eps must be in [0, 1)")
    uu = _draws(u, x.shape[0], generator, x.device, sampler)
    lam = (eps + (1.0 - eps) * uu).clamp_min(1e-12)
    x_t, masked = mask_independently(x, lam, mid, generator, pos)
    nll, _ = masked_nll(model, x, x_t, masked, mid)
    return (nll.sum(dim=1).double() / lam).float()


def k_dce_loss(
    model: Any,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    sampler: TimeSampler = "stratified",
    positions: torch.Tensor | None = None,
    mask_id: int | None = None,
    u: torch.Tensor | None = None,
) -> torch.Tensor:
    """k-DCE, the any-order autoregressive form (RADD Eq. (12)): k ~ U{1..m} (m scored positions), mask exactly
    k of them, loss = (m/k) Σ_{masked} −log p_θ(xⁱ | x_k). Unbiased for the DCE bound, with the lowest variance of
    the four (no weight exceeds m)."""
    x, pos, mid = _prepare(model, x, positions, mask_id)
    m = pos.sum(dim=1)
    uu = _draws(u, x.shape[0], generator, x.device, sampler)
    k = torch.minimum((uu * m).floor().long() + 1, m)
    x_t, masked = mask_exactly(x, k, mid, generator, pos)
    nll, _ = masked_nll(model, x, x_t, masked, mid)
    return nll.sum(dim=1) * (m.float() / k.float())


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "t_dse": t_dse_loss,
    "t_dce": t_dce_loss,
    "lambda_dce": lambda_dce_loss,
    "k_dce": k_dce_loss,
}

_ALIASES = {"t": "t_dce", "lambda": "lambda_dce", "k": "k_dce", "dse": "t_dse", "ao": "k_dce"}


def get_loss(name: str) -> Callable[..., torch.Tensor]:
    """A loss by name: ``t_dse``, ``t_dce``, ``lambda_dce``, ``k_dce`` (or ``t``, ``lambda``, ``k``)."""
    key = name.strip().lower().replace("-", "_").replace("λ", "lambda")
    key = _ALIASES.get(key, key)
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}: use one of {sorted(LOSSES)}")
    return LOSSES[key]


def evaluate_loss(
    loss: Callable[..., torch.Tensor], model: Any, x: torch.Tensor, **kwargs: Any
) -> torch.Tensor:
    """Run a loss without gradients and with dropout off (for evaluation)."""
    with torch.no_grad(), eval_mode(model):
        return loss(model, x, **kwargs)
