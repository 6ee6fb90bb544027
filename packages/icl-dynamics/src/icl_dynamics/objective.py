"""The autoregressive training loss and its analytic gradient (complex, full matrices).

Loss (the paper's AR objective, normalised as in the official code):

    L(W^{KQ}, W^{PV}) = (1/2m) Σ_n Σ_{t=2}^{T−1} ‖ŷ_{n,t+1} − x_{n,t+1}‖².

Gradients follow PyTorch's convention for real losses of complex parameters, g_Z = ∂L/∂Re Z + i ∂L/∂Im Z
(= 2 ∂L/∂Z̄), so ``Z ← Z − η g_Z`` is plain gradient descent on the real and imaginary parts, exactly what the
official code's ``torch.optim.SGD`` does. With r̃_t = (ŷ_{t+1} − x_{t+1}) / (m ρ_t), w_t = S_t W^{KQ} e_t:

    g_{PV} = Σ_{n,t} r̃_t w_tᴴ,        g_{KQ} = Σ_{n,t} S_t (W^{PV})ᴴ r̃_t e_tᴴ,

so one epoch costs two applications of the cached prefix Grams S_t and four (m·T × 2d) matrix products, with
no autograd graph (tested against autograd and finite differences).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from icl_dynamics.model import check_sequences, predict
from icl_dynamics.prefix import PrefixGram, embed

__all__ = ["ARProblem", "LossGrad", "ar_loss", "hessian_top_eigenvalue", "loss_and_grad"]


class LossGrad(NamedTuple):
    loss: float
    grad_wpv: torch.Tensor
    grad_wkq: torch.Tensor


class ARProblem:
    """One training set prepared for repeated loss/gradient evaluations.

    Holds the prefix-Gram operator, the next-token targets aligned with the query positions (zero where no
    prediction is made: t = 1 and t = T) and 1/ρ_t (zero there too), so that every epoch works on full,
    contiguous (m·T, ·) matrices without slicing copies.
    """

    def __init__(
        self, x: torch.Tensor, strategy: str = "auto", *, cache_bytes: int = 2 << 30, block: int = 16
    ) -> None:
        x = check_sequences(x)
        T = x.shape[1]
        self.x = x
        self.gram = PrefixGram(embed(x), strategy, cache_bytes=cache_bytes, block=block)
        target = torch.zeros_like(x)
        target[:, 1:-1] = x[:, 2:]  # the query at 0-indexed position t predicts x[:, t + 1]
        self.target = target
        inv_rho = torch.zeros(T, dtype=x.real.dtype, device=x.device)
        inv_rho[1:-1] = 1.0 / torch.arange(1, T - 1, dtype=x.real.dtype, device=x.device)
        self.inv_rho = inv_rho


def ar_loss(
    wpv: torch.Tensor,
    wkq: torch.Tensor,
    x: torch.Tensor,
    *,
    gram: PrefixGram | None = None,
    strategy: str = "auto",
) -> torch.Tensor:
    """The differentiable loss (for autograd, any optimizer, and as the reference of `loss_and_grad`)."""
    x = check_sequences(x)
    pred = predict(wpv, wkq, x, gram=gram, strategy=strategy)
    return 0.5 * (pred - x[:, 2:]).abs().square().sum() / x.shape[0]


def loss_and_grad(
    wpv: torch.Tensor, wkq: torch.Tensor, problem: ARProblem | torch.Tensor, *, chunk_bytes: int = 4 << 20
) -> LossGrad:
    """Loss and analytic gradients (PyTorch's complex convention) in one pass over the cached prefix Grams.

    ``problem`` is an `ARProblem` (prepare it once for training) or a raw (m, T, d) batch. Sequences are
    processed in slices whose prefix Grams take about ``chunk_bytes``, so that the forward and the backward
    application of S_t read them while they are still in cache (2× faster on a CPU than whole-batch passes).
    """
    prob = problem if isinstance(problem, ARProblem) else ARProblem(problem)
    with torch.no_grad():
        wpv, wkq = wpv.detach(), wkq.detach()
        e_all = prob.gram.e
        m, T, D = e_all.shape
        d = D // 2
        step = max(1, chunk_bytes // (T * D * D * e_all.element_size()))
        scale = prob.inv_rho[None, :, None]
        wkq_t, wpv_t, wpv_c = wkq.transpose(0, 1), wpv.transpose(0, 1), wpv.conj()
        grad_wpv = torch.zeros_like(wpv)
        grad_wkq = torch.zeros_like(wkq)
        loss = torch.zeros((), dtype=e_all.real.dtype, device=e_all.device)
        for i in range(0, m, step):  # slices of sequences (not tokens): keeps S_t hot between the two passes
            ef = e_all[i : i + step].reshape(-1, D)
            n = ef.shape[0] // T
            w = prob.gram.apply((ef @ wkq_t).view(n, T, D), i)  # w_t = S_t W^{KQ} e_t
            resid = (w.reshape(-1, D) @ wpv_t).view(n, T, d) * scale - prob.target[i : i + step]
            loss += torch.view_as_real(resid).square().sum()
            rt = (resid * (scale / m)).reshape(-1, d)
            # Σ r̃ wᴴ and Σ S u eᴴ as (D × n·T)(n·T × ·) products; .mH lets BLAS conjugate without a copy.
            grad_wpv += (w.reshape(-1, D).mH @ rt).transpose(0, 1)
            su = prob.gram.apply((rt @ wpv_c).view(n, T, D), i)  # S_t (W^{PV})ᴴ r̃_t
            grad_wkq += (ef.mH @ su.reshape(-1, D)).transpose(0, 1)
    return LossGrad(0.5 * float(loss) / m, grad_wpv, grad_wkq)


def hessian_top_eigenvalue(
    wpv: torch.Tensor,
    wkq: torch.Tensor,
    problem: ARProblem | torch.Tensor,
    *,
    iters: int = 25,
    seed: int = 0,
) -> float:
    """Largest eigenvalue of the loss Hessian (over the real and imaginary parts of both matrices) at
    (``wpv``, ``wkq``), by power iteration with central-difference Hessian-vector products of the analytic
    gradient (exact up to O(ε²) for this quartic loss).

    Used to pick a stable learning rate: the paper's diagonal dynamics alone underestimate the curvature,
    because the untouched blocks (W^{PV}[:, d:], W^{KQ}[:d, :d], W^{KQ}[d:, d:]) carry features coherent with
    x_t whose curvature is 2–5× that of the a, b directions.
    """
    prob = problem if isinstance(problem, ARProblem) else ARProblem(problem)
    gen = torch.Generator().manual_seed(seed)
    wpv, wkq = wpv.detach(), wkq.detach()
    v = [torch.randn(w.shape, generator=gen, dtype=w.dtype).to(w.device) for w in (wpv, wkq)]
    scale = max(float(wpv.abs().max()), float(wkq.abs().max()), 1e-3)
    eps = 1e-4 * scale if wpv.dtype == torch.complex128 else 1e-2 * scale
    lam = 0.0
    for _ in range(iters):  # power iteration: a handful of gradient evaluations on a small subset
        norm = float(torch.sqrt(sum(t.abs().square().sum() for t in v)))
        if norm == 0.0:
            return 0.0
        v = [t / norm for t in v]
        plus = loss_and_grad(wpv + eps * v[0], wkq + eps * v[1], prob)
        minus = loss_and_grad(wpv - eps * v[0], wkq - eps * v[1], prob)
        hv = [(plus.grad_wpv - minus.grad_wpv) / (2 * eps), (plus.grad_wkq - minus.grad_wkq) / (2 * eps)]
        lam = float(sum((a.conj() * b).real.sum() for a, b in zip(v, hv)))
        v = hv
    return abs(lam)
