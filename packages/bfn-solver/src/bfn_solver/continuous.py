"""Samplers for continuous-data BFNs (Xue et al., 2024, Sec. 4 and Appendix Algorithms 1-3).

Every sampler is a plain function ``fn(predict, x, grid, noise, final) -> x`` over an increasing grid of BFN
times (``t = 1`` is the data). ``predict(x, t)`` returns the (clipped) data prediction x̂ of the wrapped
noise-prediction network and counts its calls; ``noise(i)`` returns the standard normal draw of step i. The
single-evaluation solvers are one update rule each, shared with the diffusers-style `BFNSolverScheduler`.

Notation for a step s → t (BFN times, s < t): α = γ, σ = sqrt(γ(1 − γ)), λ = log α − log σ, h = λ_t − λ_s > 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import torch

from bfn_solver.loop import single_eval_sampler
from bfn_solver.schedules import ContinuousSchedule

__all__ = [
    "ContinuousPredictor",
    "Final",
    "bfn",
    "bfn_update",
    "sde_euler",
    "sde_euler_update",
    "sde_solver_pp1",
    "sde_solver_pp1_update",
    "sde_solver_pp2",
    "sde_solver_pp2_update",
    "solver1",
    "solver1_update",
    "solver2",
    "solver_pp1",
    "solver_pp1_update",
    "solver_pp2",
    "solver_pp2_update",
    "solver_pp3",
]

Final = Literal["prediction", "denoise", "state"]
NoiseFn = Callable[[int], torch.Tensor]
# Below this time the official code (nnaisense `noise_pred_params_to_data_pred_params`, min_t) predicts the
# prior mean 0 instead of dividing by γ ≈ 0.
T_MIN = 1e-6


@lru_cache(maxsize=65536)
def _coef(schedule: ContinuousSchedule, t: float) -> tuple[float, float, float]:
    """(α_t, σ_t, λ_t) as Python floats, computed in float64."""
    return (
        float(schedule.alpha(t)),
        float(schedule.sigma(t)),
        float(schedule.lambda_(t)),
    )


class ContinuousPredictor:
    """Wrap a noise-prediction network ``model(mu, t) -> ε̂`` as the data prediction x̂ the solvers use.

    ``t`` is passed as a tensor of shape (batch,) holding the BFN time, in ``model_dtype`` (the network's
    dtype), as is ``mu``; ε̂ comes back in the state dtype. x̂ = μ/γ − sqrt((1 − γ)/γ) ε̂ (BFN eq. 84) with the
    coefficients in float64, then clipped to [−clip, clip] as the official samplers do.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        schedule: ContinuousSchedule,
        *,
        clip: float | None = 1.0,
        model_dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model
        self.schedule = schedule
        self.clip = clip
        self.model_dtype = model_dtype
        self.nfe = 0

    def eps(self, x: torch.Tensor, t: float) -> torch.Tensor:
        dtype = self.model_dtype or x.dtype
        tt = torch.full((x.shape[0],), t, dtype=dtype, device=x.device)
        out = self.model(x.to(dtype), tt)
        self.nfe += 1
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"the model returned {got} for an input of shape {tuple(x.shape)}; a continuous BFN model must "
                "return the noise prediction ε̂ with the input's shape (wrap data-prediction networks with "
                "bfn_solver.NoisePredictionModel)"
            )
        return out.to(x.dtype)

    def x0_from_eps(self, x: torch.Tensor, eps: torch.Tensor, t: float) -> torch.Tensor:
        if t < T_MIN:
            return torch.zeros_like(x)
        a, s, _ = _coef(self.schedule, t)
        x0 = x / a - (s / a) * eps
        if self.clip is not None:
            x0 = x0.clamp(-self.clip, self.clip)
        return x0

    def __call__(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return self.x0_from_eps(x, self.eps(x, t), t)

    def pair(self, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        x0 = self(x, t)
        return x0, x0

    def output(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return self(x, t)


def _eps_from_x0(schedule: ContinuousSchedule, x: torch.Tensor, x0: torch.Tensor, s: float) -> torch.Tensor:
    """ε̂ recomputed from the clipped x̂, as the official noise-prediction solvers do."""
    a, sig, _ = _coef(schedule, s)
    return (x - a * x0) / sig


# ---------------------------------------------------------------------------------------------- update rules


def sde_euler_update(schedule, x, x0, s, t, prev, z):
    """Euler-Maruyama on the reverse SDE dμ = [f μ − g² ∇log p] dτ + g dw̄ with ∇log p = −ε̂/σ
    (Xue et al., eq. 12 and Sec. 4.3): μ_t = μ_s − (f μ_s + g² ε̂/σ_s) Δ + g sqrt(Δ) z, Δ = t − s."""
    _, sig_s, _ = _coef(schedule, s)
    f, g2 = float(schedule.f(s)), float(schedule.g2(s))
    eps = _eps_from_x0(schedule, x, x0, s)
    dt = t - s
    return x - (f * x + (g2 / sig_s) * eps) * dt + math.sqrt(g2 * dt) * z


def solver1_update(schedule, x, x0, s, t, prev, z):
    """BFN-Solver1 (noise prediction, DPM-Solver-1 form; Xue et al., Appendix Algorithm 1):
    μ_t = (α_t/α_s) μ_s − σ_t (e^h − 1) ε̂_s."""
    a_s, _, l_s = _coef(schedule, s)
    a_t, sig_t, l_t = _coef(schedule, t)
    eps = _eps_from_x0(schedule, x, x0, s)
    return (a_t / a_s) * x - sig_t * math.expm1(l_t - l_s) * eps


def solver_pp1_update(schedule, x, x0, s, t, prev, z):
    """BFN-Solver++1 (data prediction, DDIM-like; Algorithm 2): μ_t = (σ_t/σ_s) μ_s − α_t (e^{−h} − 1) x̂_s."""
    _, sig_s, l_s = _coef(schedule, s)
    a_t, sig_t, l_t = _coef(schedule, t)
    return (sig_t / sig_s) * x - a_t * math.expm1(-(l_t - l_s)) * x0


def solver_pp2_update(schedule, x, x0, s, t, prev, z):
    """BFN-Solver++2, multistep (DPM-Solver++(2M) form; Algorithm 2): with r = h_prev/h,
    D = (1 + 1/(2r)) x̂_s − x̂_prev/(2r) and μ_t = (σ_t/σ_s) μ_s − α_t (e^{−h} − 1) D. First step: ++1."""
    if prev is None:
        return solver_pp1_update(schedule, x, x0, s, t, prev, z)
    r_time, x0_prev = prev
    _, sig_s, l_s = _coef(schedule, s)
    a_t, sig_t, l_t = _coef(schedule, t)
    _, _, l_r = _coef(schedule, r_time)
    h = l_t - l_s
    r = (l_s - l_r) / h
    d = (1 + 0.5 / r) * x0 - (0.5 / r) * x0_prev
    return (sig_t / sig_s) * x - a_t * math.expm1(-h) * d


def sde_solver_pp1_update(schedule, x, x0, s, t, prev, z):
    """First-order SDE solver in data prediction (the first step of SDE-BFN-Solver++2, Algorithm 3):
    μ_t = (σ_t/σ_s) e^{−h} μ_s + α_t (1 − e^{−2h}) x̂_s + σ_t sqrt(1 − e^{−2h}) z.

    On the BFN schedule these coefficients are (1 − γ_t)/(1 − γ_s), (γ_t − γ_s)/(1 − γ_s) and
    sqrt((1 − γ_t)(γ_t − γ_s)/(1 − γ_s)): exactly the Bayesian update of the original BFN sampler
    (`bfn_update`), which is Proposition 4.2 of the paper made exact (tested).
    """
    _, sig_s, l_s = _coef(schedule, s)
    a_t, sig_t, l_t = _coef(schedule, t)
    h = l_t - l_s
    em2h = -math.expm1(-2 * h)  # 1 − e^{−2h}
    return (sig_t / sig_s) * math.exp(-h) * x + a_t * em2h * x0 + sig_t * math.sqrt(em2h) * z


def sde_solver_pp2_update(schedule, x, x0, s, t, prev, z):
    """SDE-BFN-Solver++2, multistep (SDE-DPM-Solver++(2M) form; Algorithm 3): with D₁ = (x̂_s − x̂_prev)/r,
    μ_t = (σ_t/σ_s) e^{−h} μ_s + α_t (1 − e^{−2h}) (x̂_s + D₁/2) + σ_t sqrt(1 − e^{−2h}) z. First step: ++1."""
    if prev is None:
        return sde_solver_pp1_update(schedule, x, x0, s, t, prev, z)
    r_time, x0_prev = prev
    _, sig_s, l_s = _coef(schedule, s)
    a_t, sig_t, l_t = _coef(schedule, t)
    _, _, l_r = _coef(schedule, r_time)
    h = l_t - l_s
    r = (l_s - l_r) / h
    d1 = (x0 - x0_prev) / r
    em2h = -math.expm1(-2 * h)
    return (sig_t / sig_s) * math.exp(-h) * x + a_t * em2h * (x0 + 0.5 * d1) + sig_t * math.sqrt(em2h) * z


def bfn_update(schedule, x, x0, s, t, prev, z):
    """One step of the original BFN sampler (Graves et al., Algorithm 3) from time s to t: a sender sample
    y = x̂ + z/sqrt(α) with accuracy α = ρ(t) − ρ(s), and the Bayesian update μ ← (ρ_s μ + α y)/ρ_t."""
    rho_s, rho_t = float(schedule.accuracy(s)), float(schedule.accuracy(t))
    acc = rho_t - rho_s
    y = x0 + z / math.sqrt(acc)
    return (rho_s * x + acc * y) / rho_t


# ------------------------------------------------------------------------------------------------- samplers


sde_euler = single_eval_sampler(
    sde_euler_update,
    True,
    "SDE Euler (Euler-Maruyama on the reverse SDE, eq. 12): first order, 1 NFE per step.",
)
solver1 = single_eval_sampler(
    solver1_update,
    False,
    "BFN-Solver1 (noise prediction; Algorithm 1): first-order ODE solver, 1 NFE per step.",
)
solver_pp1 = single_eval_sampler(
    solver_pp1_update,
    False,
    "BFN-Solver++1 (data prediction; Algorithm 2): first-order ODE solver, 1 NFE per step.",
)
solver_pp2 = single_eval_sampler(
    solver_pp2_update,
    False,
    "BFN-Solver++2 (multistep; Algorithm 2): second-order ODE solver, 1 NFE per step.",
)
sde_solver_pp1 = single_eval_sampler(
    sde_solver_pp1_update,
    True,
    "First-order SDE solver in data prediction (= the BFN sampler's update on any grid).",
)
sde_solver_pp2 = single_eval_sampler(
    sde_solver_pp2_update, True, "SDE-BFN-Solver++2 (multistep; Algorithm 3): 1 NFE per step."
)


def solver2(predict: ContinuousPredictor, x: torch.Tensor, grid, noise: NoiseFn, final: Final, steps=None):
    """BFN-Solver2 (noise prediction; Xue et al., Sec. 4.3 / Algorithm 1 with the second-order Taylor term):
    the single-step DPM-Solver-2 with the intermediate time at the λ midpoint, 2 NFE per step:

        u     = (α_m/α_s) μ_s − σ_m (e^{h/2} − 1) ε̂_s,        λ_m = λ_s + h/2
        μ_t   = (α_t/α_s) μ_s − σ_t (e^h − 1) ε̂(u, m).

    Not in the official code (which has only BFN-Solver1 in noise prediction); derived from the paper's
    exponential-integrator solution of the probability-flow ODE, μ_t = (α_t/α_s) μ_s − α_t ∫ e^{−λ} ε̂ dλ.
    With final="prediction" the last step returns x̂ at its intermediate point (the last network call).
    """
    sch = predict.schedule
    n = len(grid) - 1
    for i in steps if steps is not None else range(n):
        s, t = grid[i], grid[i + 1]
        a_s, _, l_s = _coef(sch, s)
        a_t, sig_t, l_t = _coef(sch, t)
        h = l_t - l_s
        m = float(sch.t_from_lambda(l_s + 0.5 * h))
        a_m, sig_m, _ = _coef(sch, m)
        eps_s = _eps_from_x0(sch, x, predict(x, s), s)
        u = (a_m / a_s) * x - sig_m * math.expm1(0.5 * h) * eps_s
        x0_m = predict(u, m)
        if final == "prediction" and i == n - 1:
            return x0_m
        x = (a_t / a_s) * x - sig_t * math.expm1(h) * _eps_from_x0(sch, u, x0_m, m)
    return predict(x, grid[-1]) if final == "denoise" else x


def solver_pp3(predict: ContinuousPredictor, x: torch.Tensor, grid, noise: NoiseFn, final: Final, steps=None):
    """BFN-Solver++3, multistep: DPM-Solver++(3M)'s construction (Lu et al., 2022, the third-order multistep
    update in data prediction) in BFN time, for continuous data; beyond the paper, which stops at order 2.

    With the last three predictions x̂₀, x̂₁, x̂₂ at λ_s > λ_{s1} > λ_{s2}, h = λ_t − λ_s, r₀ = (λ_s − λ_{s1})/h,
    r₁ = (λ_{s1} − λ_{s2})/h, D₁⁰ = (x̂₀ − x̂₁)/r₀, D₁¹ = (x̂₁ − x̂₂)/r₁, D₁ = D₁⁰ + r₀/(r₀ + r₁)(D₁⁰ − D₁¹),
    D₂ = (D₁⁰ − D₁¹)/(r₀ + r₁) (≈ h x̂' and ½ h² x̂''):

        μ_t = (σ_t/σ_s) μ_s − α_t (e^{−h} − 1) x̂₀ + α_t φ₂ D₁ − 2 α_t φ₃ D₂,
        φ₂ = (e^{−h} − 1)/h + 1,  φ₃ = (e^{−h} − 1 + h)/h² − ½.

    The factor 2 on D₂ is what the Taylor expansion ∫ e^{λ−λ_t} (λ−λ_s)²/2 x̂'' dλ = −h² φ₃ x̂'' requires. The
    published 3M update (dpm-solver, diffusers' DPMSolverMultistepScheduler) uses −α_t φ₃ D₂, half that term: its
    local error is then O(h³) and its global order 2 (measured here: 2.0 with it, 3.0 with the factor; tested).

    A multistep method is only as accurate as its start: a first-order first step (local error O(h²)) would cap
    the global order at 2 (measured 2.5 on the exact toy). So the first step is DPM-Solver++(2S) with the λ
    midpoint m (one extra network call: n + 1 NFE in all), μ_t = (σ_t/σ_s) μ_s − α_t (e^{−h} − 1) x̂(u, m) with u the
    ++1 step to m, and its two predictions seed the third-order steps that follow. Deterministic (``noise``
    unused); with final="prediction" the last step returns the last network prediction.
    """
    sch = predict.schedule
    n = len(grid) - 1
    hist: list[tuple[float, torch.Tensor]] = []  # (time, x̂) of the last two network calls, newest last
    for i in steps if steps is not None else range(n):
        s, t = grid[i], grid[i + 1]
        x0, shown = predict.pair(x, s)
        if final == "prediction" and i == n - 1:
            return shown
        _, sig_s, l_s = _coef(sch, s)
        a_t, sig_t, l_t = _coef(sch, t)
        h = l_t - l_s
        if len(hist) < 2:
            m = float(sch.t_from_lambda(l_s + 0.5 * h))
            u = solver_pp1_update(sch, x, x0, s, m, None, None)
            x0_m, _ = predict.pair(u, m)
            x = (sig_t / sig_s) * x - a_t * math.expm1(-h) * x0_m
            hist = [(s, x0), (m, x0_m)]
            continue
        (s2, m2), (s1, m1) = hist
        l_1, l_2 = _coef(sch, s1)[2], _coef(sch, s2)[2]
        r0, r1 = (l_s - l_1) / h, (l_1 - l_2) / h
        d1_0, d1_1 = (x0 - m1) / r0, (m1 - m2) / r1
        d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
        d2 = (d1_0 - d1_1) / (r0 + r1)
        em = math.expm1(-h)
        phi2, phi3 = em / h + 1.0, (em + h) / h**2 - 0.5  # ≈ h/2 and ≈ −h/6
        x = (sig_t / sig_s) * x - a_t * em * x0 + a_t * phi2 * d1 - 2.0 * a_t * phi3 * d2
        hist = [hist[-1], (s, x0)]
    return predict.output(x, grid[-1]) if final == "denoise" else x


def bfn(predict: ContinuousPredictor, x: torch.Tensor, grid, noise: NoiseFn, final: Final, steps=None):
    """The original BFN sampler for continuous data (Graves et al., Algorithm 3) on the grid t_i = i/n from
    the prior μ = 0, ρ = 1: x̂ = OUTPUT(μ, t_{i−1}), y ~ N(x̂, 1/α_i), μ ← (ρ μ + α_i y)/(ρ + α_i).

    As in the official code the prediction at t = 0 is the prior mean 0 (nnaisense discards the network output
    there), so that call is skipped. final="denoise" (the official default) ends with x̂(μ, 1): n + 1 NFE.
    """
    n = len(grid) - 1
    for i in steps if steps is not None else range(n):
        s, t = grid[i], grid[i + 1]
        x0 = torch.zeros_like(x) if s < T_MIN else predict(x, s)
        if final == "prediction" and i == n - 1:
            return x0
        x = bfn_update(predict.schedule, x, x0, s, t, None, noise(i))
    return predict(x, grid[-1]) if final == "denoise" else x
