"""Samplers for discrete-data BFNs (Xue et al., 2024, Sec. 5 and Appendix), on the latent logits z.

The network sees θ = softmax(z) and returns class logits; ê = softmax(logits) is its data prediction. Written in
the BFN time t (t = 1 at the data; the paper's τ = 1 − t), with β(t) = β₁t² and g² = 2Kβ₁t:

- reverse SDE (paper eq. 20): dz = g² (ê − 1/K) dt + g dW      (no z-dependent drift since f + g²/(Kβ) = 0)
- probability-flow ODE (eq. 22):  dz/dt = z/t + Kβ₁ t (ê − 1/K), solved exactly in its linear part:
  z_t = (t/s) z_s + Kβ₁ t ∫_s^t (ê_u − 1/K) du.

Every sampler is a plain function ``fn(predict, z, grid, noise, final) -> logits or z`` with ``predict(z, t) ->
(ê, logits)`` counting network calls; the single-evaluation ones are one update rule each, shared with the
diffusers-style scheduler.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch

from bfn_solver.loop import single_eval_sampler
from bfn_solver.schedules import DiscreteSchedule
from gen_common.seeding import rand

__all__ = [
    "DiscretePredictor",
    "bfn",
    "gumbel_onehot",
    "ode_euler",
    "ode_euler_update",
    "sde_euler",
    "sde_euler_update",
    "sde_solver1",
    "sde_solver1_update",
    "sde_solver2",
    "sde_solver2_update",
    "solver1",
    "solver1_update",
    "solver2",
    "solver2_multistep",
    "solver2_multistep_update",
]

Final = Literal["prediction", "denoise", "state"]
NoiseFn = Callable[[int], torch.Tensor]


def gumbel_onehot(logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A one-hot sample from Categorical(logits) by the Gumbel-max trick, with the uniforms drawn on the
    generator's device (same seed, same sample on any device)."""
    u = rand(logits.shape, generator, device=logits.device, dtype=torch.float64)
    g = -torch.log(-torch.log(u.clamp(min=1e-300, max=1.0 - 1e-16)))
    idx = (logits.double() + g).argmax(-1)
    return torch.nn.functional.one_hot(idx, logits.shape[-1]).to(logits.dtype)


class DiscretePredictor:
    """Wrap ``model(theta, t) -> logits`` (theta = softmax(z), shape (B, ..., K); t of shape (B,) holding the
    BFN time, both in ``model_dtype``) as ``(ê, logits)`` in the state dtype; counts network calls.

    ``sample_prediction=True`` replaces ê by a one-hot sample of the predicted categorical (the official
    ``cate_samp`` option; with it SDE-Solver1 is exactly the original BFN sampler).
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        schedule: DiscreteSchedule,
        *,
        model_dtype: torch.dtype | None = None,
        sample_prediction: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        self.model = model
        self.schedule = schedule
        self.model_dtype = model_dtype
        self.sample_prediction = sample_prediction
        self.generator = generator
        self.nfe = 0

    def logits(self, z: torch.Tensor, t: float) -> torch.Tensor:
        dtype = self.model_dtype or z.dtype
        theta = torch.softmax(z, dim=-1).to(dtype)
        tt = torch.full((z.shape[0],), t, dtype=dtype, device=z.device)
        out = self.model(theta, tt)
        self.nfe += 1
        if not isinstance(out, torch.Tensor) or out.shape != z.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"the model returned {got} for theta of shape {tuple(z.shape)}; a discrete BFN model must return "
                f"class logits of the same shape (..., K={self.schedule.num_classes})"
            )
        return out.to(z.dtype)

    def __call__(self, z: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits(z, t)
        if self.sample_prediction:
            return gumbel_onehot(logits, self.generator), logits
        return torch.softmax(logits, dim=-1), logits

    def pair(self, z: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        return self(z, t)

    def output(self, z: torch.Tensor, t: float) -> torch.Tensor:
        return self.logits(z, t)


# ---------------------------------------------------------------------------------------------- update rules
# (schedule, z_s, ê_s, s, t, previous (r, ê_r) or None, noise or None) -> z_t


def ode_euler_update(schedule: DiscreteSchedule, z, e, s, t, prev, xi):
    """Euler on the probability-flow ODE (official ``ode_euler``): z_t = z_s + Δ (z_s/s + Kβ₁ s (ê − 1/K))."""
    k, b1 = schedule.num_classes, schedule.beta_1
    return z + (t - s) * (z / s + k * b1 * s * (e - 1.0 / k))


def sde_euler_update(schedule: DiscreteSchedule, z, e, s, t, prev, xi):
    """Euler-Maruyama on the reverse SDE: z_t = z_s + g²_s (ê − 1/K) Δ + g_s sqrt(Δ) ξ."""
    k = schedule.num_classes
    g2 = float(schedule.g2(s))
    dt = t - s
    return z + g2 * dt * (e - 1.0 / k) + math.sqrt(g2 * dt) * xi


def solver1_update(schedule: DiscreteSchedule, z, e, s, t, prev, xi):
    """BFN-Solver1 (ODE, Xue et al. eq. 23): z_t = (t/s) z_s + Kβ₁ t (t − s)(ê_s − 1/K)."""
    k, b1 = schedule.num_classes, schedule.beta_1
    return (t / s) * z + k * b1 * t * (t - s) * (e - 1.0 / k)


def solver2_multistep_update(schedule: DiscreteSchedule, z, e, s, t, prev, xi):
    """BFN-Solver2, multistep (eq. 24): adds Kβ₁ t (t − s)²/2 · D₁ with D₁ = (ê_s − ê_r)/(s − r), the
    backward difference of the previous step. First step: Solver1."""
    out = solver1_update(schedule, z, e, s, t, prev, xi)
    if prev is None:
        return out
    r, e_r = prev
    k, b1 = schedule.num_classes, schedule.beta_1
    return out + (k * b1 * t * (t - s) ** 2 / 2) * ((e - e_r) / (s - r))


def sde_solver1_update(schedule: DiscreteSchedule, z, e, s, t, prev, xi):
    """SDE-BFN-Solver1 (eq. 21, exact in g²): z_t = z_s + (β_t − β_s)(K ê − 1) + sqrt(K(β_t − β_s)) ξ.
    With ê a one-hot sample this is the original BFN sampler's update (BFN Algorithm 5)."""
    k = schedule.num_classes
    db = float(schedule.beta(t) - schedule.beta(s))
    return z + db * (k * e - 1.0) + math.sqrt(k * db) * xi


def sde_solver2_update(schedule: DiscreteSchedule, z, e, s, t, prev, xi):
    """SDE-BFN-Solver2, multistep: adds ∫_s^t 2Kβ₁u (u − s) du · D₁ = ⅓ Kβ₁ (t − s)² (2t + s) D₁ with the
    backward difference D₁ = (ê_s − ê_r)/(s − r). (In the paper's τ: ⅓Kβ₁(t−s)²(s + 2t − 3)D₁.) First step:
    SDE-Solver1."""
    out = sde_solver1_update(schedule, z, e, s, t, prev, xi)
    if prev is None:
        return out
    r, e_r = prev
    k, b1 = schedule.num_classes, schedule.beta_1
    return out + (k * b1 * (t - s) ** 2 * (2 * t + s) / 3) * ((e - e_r) / (s - r))


# ------------------------------------------------------------------------------------------------- samplers


ode_euler = single_eval_sampler(
    ode_euler_update, False, "ODE Euler on the probability-flow ODE: first order, 1 NFE per step."
)
sde_euler = single_eval_sampler(
    sde_euler_update, True, "SDE Euler (Euler-Maruyama on the reverse SDE): first order, 1 NFE per step."
)
solver1 = single_eval_sampler(
    solver1_update, False, "BFN-Solver1 (ODE, exact linear part): first order, 1 NFE per step."
)
solver2_multistep = single_eval_sampler(
    solver2_multistep_update, False, "BFN-Solver2, multistep: second-order ODE solver, 1 NFE per step."
)
sde_solver1 = single_eval_sampler(
    sde_solver1_update, True, "SDE-BFN-Solver1: first-order SDE solver, 1 NFE per step."
)
sde_solver2 = single_eval_sampler(sde_solver2_update, True, "SDE-BFN-Solver2, multistep: 1 NFE per step.")


def solver2(predict: DiscretePredictor, z: torch.Tensor, grid, noise: NoiseFn, final: Final, steps=None):
    """BFN-Solver2, single step (eq. 24 with the midpoint m = (s + t)/2; 2 NFE per step): a Solver1 step to m,
    then D₁ = (ê_m − ê_s)/(m − s) in z_t = (t/s) z_s + Kβ₁ t (t − s)(ê_s − 1/K) + Kβ₁ t (t − s)²/2 · D₁.
    With final="prediction" the last step returns the logits at its midpoint (the official choice)."""
    sch = predict.schedule
    k, b1 = sch.num_classes, sch.beta_1
    n = len(grid) - 1
    for i in steps if steps is not None else range(n):
        s, t = grid[i], grid[i + 1]
        m = 0.5 * (s + t)
        e_s, _ = predict(z, s)
        z_m = solver1_update(sch, z, e_s, s, m, None, None)
        e_m, logits_m = predict(z_m, m)
        if final == "prediction" and i == n - 1:
            return logits_m
        d1 = (e_m - e_s) / (m - s)
        z = solver1_update(sch, z, e_s, s, t, None, None) + (k * b1 * t * (t - s) ** 2 / 2) * d1
    return predict.logits(z, grid[-1]) if final == "denoise" else z


def bfn(predict: DiscretePredictor, z: torch.Tensor, grid, noise: NoiseFn, final: Final, steps=None):
    """The original BFN sampler for discrete data (Graves et al., Algorithm 9) on t_i = i/n from the uniform
    prior: k ~ Cat(softmax(net(θ, t_{i−1}))), y ~ N(α_i(K e_k − 1), α_i K I), θ ← θ e^y / Σ θ e^y, with
    α_i = β(t_i) − β(t_{i−1}). Written on z = log θ + const, where the Bayesian update is z ← z + y.
    final="denoise" (the official default) ends with the network output at t = 1: n + 1 NFE."""
    sch = predict.schedule
    k = sch.num_classes
    n = len(grid) - 1
    for i in steps if steps is not None else range(n):
        s, t = grid[i], grid[i + 1]
        logits = predict.logits(z, s)
        if final == "prediction" and i == n - 1:
            return logits
        onehot = gumbel_onehot(logits, predict.generator)
        acc = float(sch.beta(t) - sch.beta(s))
        y = acc * (k * onehot - 1.0) + math.sqrt(acc * k) * noise(i)
        # The Bayesian update θ ← θ e^y / Σ θ e^y, kept in log space (z is log θ up to a per-position constant).
        z = torch.log_softmax(z + y, dim=-1)
    return predict.logits(z, grid[-1]) if final == "denoise" else z
