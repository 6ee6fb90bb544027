"""Golden values: each update rule on fixed inputs equals numbers computed from the paper's formulas.

The numbers were computed once from the formulas as the reference notes state them (continuous: γ = 1 − σ₁^{2t},
α = γ, σ = sqrt(γ(1 − γ)), λ = log α − log σ; discrete in the paper's time τ = 1 − t), so a sign slip or a swapped
coefficient that keeps a solver's convergence order still fails here. `_from_formulas` recomputes them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from bfn_solver import continuous as C
from bfn_solver import discrete as D
from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule

S, T, R = 0.3, 0.45, 0.2  # BFN times: previous step r < current s < next t
X, XH, XR, Z = 0.7, 0.2, -0.4, 0.5  # state, x̂_s, x̂_r, noise draw

CONTINUOUS_GOLDEN = {
    "sde_euler": -0.24554849869722511,
    "solver1": 0.37938450622884434,
    "solver_pp1": 0.37938450622884445,
    "solver_pp2": 0.6621417767563544,
    "sde_solver_pp1": 0.2838273246328932,
    "sde_solver_pp2": 0.6662118957733935,
    "bfn": 0.28382732463289495,
}

K, ZZ, E, ER, XI = 3, [0.3, -0.2, 0.1], [0.5, 0.3, 0.2], [0.2, 0.5, 0.3], [0.4, -1.1, 0.7]
DISCRETE_GOLDEN = {
    "solver1": [0.46898437499999984, -0.3037968749999999, 0.13481249999999997],
    "solver2_multistep": [0.4946132812499998, -0.3208828124999999, 0.12626953124999998],
    "sde_solver1": [0.5059248755793337, -0.6856098140931677, 0.37968493851383395],
    "sde_solver2": [0.5514873755793337, -0.7159848140931676, 0.364497438513834],
}


def _from_formulas() -> tuple[dict[str, float], dict[str, list[float]]]:
    s1 = 1e-3
    gam = lambda u: 1 - s1 ** (2 * u)  # noqa: E731
    sg = lambda u: math.sqrt(gam(u) * (1 - gam(u)))  # noqa: E731
    lam = lambda u: math.log(gam(u)) - math.log(sg(u))  # noqa: E731
    h = lam(T) - lam(S)
    eps = (X - gam(S) * XH) / sg(S)
    f = 2 * math.log(s1) * (1 - gam(S)) / gam(S)
    g2 = -2 * math.log(s1) * (1 - gam(S))
    r = (lam(S) - lam(R)) / h
    em2 = 1 - math.exp(-2 * h)
    rho = lambda u: s1 ** (-2 * u)  # noqa: E731
    acc = rho(T) - rho(S)
    cont = {
        "sde_euler": X - (f * X + g2 * eps / sg(S)) * (T - S) + math.sqrt(g2 * (T - S)) * Z,
        "solver1": (gam(T) / gam(S)) * X - sg(T) * (math.exp(h) - 1) * eps,
        "solver_pp1": (sg(T) / sg(S)) * X - gam(T) * (math.exp(-h) - 1) * XH,
        "solver_pp2": (sg(T) / sg(S)) * X
        - gam(T) * (math.exp(-h) - 1) * ((1 + 1 / (2 * r)) * XH - XR / (2 * r)),
        "sde_solver_pp1": (sg(T) / sg(S)) * math.exp(-h) * X + gam(T) * em2 * XH + sg(T) * math.sqrt(em2) * Z,
        "sde_solver_pp2": (sg(T) / sg(S)) * math.exp(-h) * X
        + gam(T) * em2 * (XH + 0.5 * (XH - XR) / r)
        + sg(T) * math.sqrt(em2) * Z,
        "bfn": (rho(S) * X + acc * (XH + Z / math.sqrt(acc))) / rho(T),
    }
    b1 = 0.5625
    ts, tt, tr = 1 - S, 1 - T, 1 - R
    z, e, er, xi = map(np.array, (ZZ, E, ER, XI))
    c_t = K * b1 * (1 - tt)
    beta = lambda u: b1 * (1 - u) ** 2  # noqa: E731
    d1 = (e - er) / (ts - tr)
    s1_ = ((1 - tt) / (1 - ts)) * z + c_t * (tt - ts) * (1 / K - e)
    sde1 = z + (beta(tt) - beta(ts)) * (K * e - 1) + np.sqrt(K * (beta(tt) - beta(ts))) * xi
    disc = {
        "solver1": s1_,
        "solver2_multistep": s1_ - c_t * (tt - ts) ** 2 / 2 * d1,
        "sde_solver1": sde1,
        "sde_solver2": sde1 + K * b1 * (tt - ts) ** 2 * (ts + 2 * tt - 3) / 3 * d1,
    }
    return cont, {k: v.tolist() for k, v in disc.items()}


def test_golden_values_are_the_formulas():
    cont, disc = _from_formulas()
    for k, v in CONTINUOUS_GOLDEN.items():
        assert cont[k] == pytest.approx(v, rel=1e-12, abs=1e-14), k
    for k, v in DISCRETE_GOLDEN.items():
        assert disc[k] == pytest.approx(v, rel=1e-12, abs=1e-14), k


@pytest.mark.parametrize("name", sorted(CONTINUOUS_GOLDEN))
def test_continuous_update_rules(name):
    update = C.bfn_update if name == "bfn" else getattr(C, f"{name}_update")
    one = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    out = update(ContinuousSchedule(sigma_1=1e-3), one(X), one(XH), S, T, (R, one(XR)), one(Z))
    assert float(out) == pytest.approx(CONTINUOUS_GOLDEN[name], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", sorted(DISCRETE_GOLDEN))
def test_discrete_update_rules(name):
    update = getattr(D, f"{name}_update")
    vec = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    sch = DiscreteSchedule(num_classes=K, beta_1=0.5625)
    out = update(sch, vec(ZZ), vec(E), S, T, (R, vec(ER)), vec(XI))
    assert out.tolist() == pytest.approx(DISCRETE_GOLDEN[name], rel=1e-9, abs=1e-12)


# ---------------------------------------------------------------------------------------------- solver++3


class _QuadraturePredictor:
    """x̂ = cos λ, independent of the state: the ODE is a pure quadrature with the exact solution
    μ_t/σ_t = μ_s/σ_s + ∫ e^λ cos λ dλ, so a k-th order multistep method shows order k exactly."""

    schedule = ContinuousSchedule()

    def pair(self, x, t):
        v = torch.full_like(x, math.cos(float(self.schedule.lambda_(t))))
        return v, v

    def output(self, x, t):
        return self.pair(x, t)[0]


def _quadrature_error(n: int) -> float:
    from bfn_solver.schedules import time_grid

    sch = _QuadraturePredictor.schedule
    grid = time_grid(sch, n, 0.01, "logsnr").tolist()
    y = C.solver_pp3(_QuadraturePredictor(), torch.ones(1, dtype=torch.float64), grid, None, "state")
    big_f = lambda l: math.exp(l) * (math.cos(l) + math.sin(l)) / 2  # noqa: E731
    l0, l1 = float(sch.lambda_(grid[0])), float(sch.lambda_(grid[-1]))
    s0, s1 = float(sch.sigma(grid[0])), float(sch.sigma(grid[-1]))
    exact = s1 * (1.0 / s0 + big_f(l1) - big_f(l0))
    return abs(float(y) - exact)


def test_solver_pp3_is_third_order():
    from bfn_solver.order import fit_order

    steps = [80, 160, 320]  # pre-asymptotic below (3.7 at 20 → 40), 3.2 at 160 → 320
    order = fit_order(steps, [_quadrature_error(n) for n in steps])
    assert 2.9 < order < 3.45


def test_published_3m_coefficient_is_only_second_order():
    """The local error of one 3M step on x̂(λ) = cos λ: with the Taylor coefficient 2φ₃ it is O(h⁴); with the
    published φ₃ (dpm-solver, diffusers) O(h³), i.e. global order 2. This is why solver++3 uses 2φ₃."""
    big_f = lambda l: math.exp(l) * (math.cos(l) + math.sin(l)) / 2  # noqa: E731

    def local_error(h: float, factor: float) -> float:
        ls = 1.0
        m0, m1, m2 = math.cos(ls), math.cos(ls - h), math.cos(ls - 2 * h)
        d10, d11 = m0 - m1, m1 - m2  # r0 = r1 = 1
        d1, d2 = d10 + 0.5 * (d10 - d11), 0.5 * (d10 - d11)
        em = math.expm1(-h)
        phi2, phi3 = em / h + 1, (em + h) / h**2 - 0.5
        inc = math.exp(ls + h) * (-em * m0 + phi2 * d1 - factor * phi3 * d2)
        return abs(inc - (big_f(ls + h) - big_f(ls)))

    ratio = lambda factor: local_error(0.05, factor) / local_error(0.025, factor)  # noqa: E731
    assert ratio(2.0) == pytest.approx(16, rel=0.1)  # local O(h⁴)
    assert ratio(1.0) == pytest.approx(8, rel=0.2)  # local O(h³)
