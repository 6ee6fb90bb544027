"""Closed-form predictions for the trained mesa-optimizer: moments, fixed point ab*, ratio, MSE, recovery.

Paper, Sec. 4 (numbering from the paper's Fig. 1 caption: "the convergence of ab satisfies Theorem 4.1 ...
the trained transformer can recover the sequence with the initial token from Example 4.1, but fails to
recover the Gaussian initial token, which verifies Theorem 4.2 and Proposition 4.1, respectively"):

- Theorem 4.1: under the data condition Assumption 4.1, gradient flow from the diagonal initialisation
  (Assumption 3.1) keeps the diagonal structure and ab converges: the mesa-optimizer
  ŷ_{t+1} = (ab/(t−1)) Σ_i x_i x_{i−1}ᴴ x_t emerges. `predict_theory(...).predicted_ab` is its limit.
- Theorem 4.2: the learned map recovers W iff the stronger moment condition Assumption 4.2 holds;
  Example 4.1 (the sparse x₁ of Fig. 1) satisfies it. `TheoryPrediction.recovers` / `recovery_gap`.
- Proposition 4.1: Gaussian x₁ is not recovered (our derivation: the prediction/true ratio → 1/5, the
  official plot's line). `predicted_ratio_limit`.
- Sec. 4 beyond Assumption 4.1 (all-ones x₁): not vanilla GD (the result's number is not known to us).

We have read the captions and the abstract, not the statements, so the formulas below are our own
derivation of what these results describe (not a transcription of them), checked exactly in the test-suite
on phase/sign-symmetrised data sets and numerically against training:

With x_{t,j} = λ_j^{t−1} x_{1j}, |λ_j| = 1 i.i.d. uniform phases, and the diagonal model (a_j = a, b_j = b,
c = ab), the error of coordinate j at query t is
    (c|x_{1j}|² − 1) x_{t+1,j} + (c/(t−1)) x_{t+1,j} Σ_{k≠j} |x_{1k}|² Σ_{s=1}^{t−1} (λ_k/λ_j)^s,
whose phase average gives the expected loss (per sequence, summed over t = 2..T−1 and j)
    L(c) = (d/2) [A c² − 2 B c + (T−2) m₂],
    A = (T−2) m₆ + (d−1) m₂₄ H_{T−2},   B = (T−2) m₄,
with m_k = E|x_{1j}|^k, m₂₄ = E|x_{1j}|²|x_{1k}|⁴ (j ≠ k; = m₂m₄ for independent coordinates, 0 for the
sparse family), H_n the harmonic number. Per coordinate ∂L/∂a = b(Ac − B), ∂L/∂b = a(Ac − B), so under
gradient flow a² − b² is conserved and c → ab* = B/A:

    ab* = (T−2) m₄ / [(T−2) m₆ + (d−1) m₂₄ H_{T−2}]  →  m₄/m₆  (T → ∞).

Gaussian σ: ab* → 1/(5σ²) and the prediction/true ratio → 1/5 (the official plot's lines); sparse c:
ab* = 1/c² exactly and the MSE → 0. The learned map tends to ab*·diag(|x_{1j}|²)·W, which equals W on the
support iff |x_{1j}|² ∈ {0, m₆/m₄} a.s., i.e. iff m₄² = m₂m₆ (Cauchy–Schwarz equality; Assumption 4.2 and
Theorem 4.2 as we read them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from icl_dynamics.data import X1Dist

__all__ = [
    "Moments",
    "TheoryPrediction",
    "diagonal_gd",
    "empirical_moments",
    "expected_loss",
    "expected_mse_last",
    "gradient_flow",
    "harmonic",
    "moments",
    "predict_theory",
    "stable_lr",
]


def harmonic(n: int) -> float:
    """H_n = Σ_{s=1}^{n} 1/s (exact summation; n is at most a few thousand here)."""
    return math.fsum(1.0 / s for s in range(1, n + 1))


@dataclass(frozen=True)
class Moments:
    """Moments of one coordinate of x₁ (coordinates are assumed exchangeable)."""

    m2: float
    m4: float
    m6: float
    m24: float  # E|x_{1j}|²|x_{1k}|⁴ for j ≠ k
    p_nonzero: float = 1.0  # P(x_{1j} ≠ 0): the prediction/true ratio is averaged where x_{1j} ≠ 0
    assumption_holds: bool = True  # sign-symmetric, exchangeable coordinates (our reading of Assumption 4.1)
    source: str = "exact"

    def __post_init__(self) -> None:
        for name in ("m2", "m4", "m6"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"moment {name} must be positive and finite, got {v} (is x1 identically 0?)")


def moments(
    dist: X1Dist, d: int, *, n_mc: int = 200_000, generator: torch.Generator | None = None
) -> Moments:
    """Exact moments of the built-in families (sparse = the paper's Example 4.1); Monte Carlo (``n_mc`` draws)
    for a custom sampler."""
    s = dist.scale
    if dist.family == "gaussian":
        return Moments(s**2, 3 * s**4, 15 * s**6, 3 * s**6)
    if dist.family == "sparse":
        # One non-zero coordinate: |x_j|²|x_k|⁴ = 0 for j ≠ k, which removes the finite-T noise term.
        return Moments(s**2 / d, s**4 / d, s**6 / d, 0.0, p_nonzero=1.0 / d)
    if dist.family == "ones":
        return Moments(1.0, 1.0, 1.0, 1.0, assumption_holds=False)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    return replace(empirical_moments(dist.sample(n_mc, d, gen)), source=f"monte-carlo (n={n_mc})")


def empirical_moments(x1: torch.Tensor, *, sigmas: float = 5.0) -> Moments:
    """Moments of the empirical distribution of the rows of ``x1`` (n, d), e.g. the first tokens of a data set.

    ``assumption_holds`` is a statistical check (within ``sigmas`` standard errors) that the odd statistics
    E[x_j], E[x_j x̄_k] and E[x_j |x_k|²] (j ≠ k) vanish and that the coordinates share m₂, as the paper's data
    condition requires; it is a diagnostic, not a proof.
    """
    if x1.ndim != 2 or x1.shape[0] < 2:
        raise ValueError(f"x1 must be (n >= 2, d), got shape {tuple(x1.shape)}")
    x = x1.detach().to("cpu", torch.complex128)
    n, d = x.shape
    p = x.abs().square()
    m2, m4, m6 = float(p.mean()), float(p.square().mean()), float((p**3).mean())
    if d > 1:
        cross = (p.sum(1) * p.square().sum(1) - (p**3).sum(1)) / (d * (d - 1))
        m24 = float(cross.mean())
    else:
        m24 = 0.0
    p_nonzero = float((x.abs() > 0).double().mean())

    def centred(stat: torch.Tensor) -> bool:
        mean = stat.mean(0)
        se = (stat - mean).abs().square().mean(0).sqrt() / math.sqrt(n)
        return bool((mean.abs() <= sigmas * se + 1e-12 * (1 + m2)).all())

    ok = centred(x)
    if d > 1:
        off = ~torch.eye(d, dtype=torch.bool)
        ok = ok and centred((x[:, :, None] * x.conj()[:, None, :])[:, off])
        ok = ok and centred((x[:, :, None] * p[:, None, :])[:, off])
        per_coord = p.mean(0)
        ok = ok and bool(
            (per_coord - m2).abs().max() <= sigmas * float(p.std(0).max()) / math.sqrt(n) + 1e-12
        )
    return Moments(m2, m4, m6, m24, p_nonzero, ok, f"empirical (n={n})")


def _coefficients(mom: Moments, d: int, T: int) -> tuple[float, float]:
    """A = (T−2)m₆ + (d−1)m₂₄H_{T−2}, B = (T−2)m₄: L(c) = (d/2)[A c² − 2Bc + (T−2)m₂]."""
    if T < 3:
        raise ValueError(f"T must be >= 3, got {T}")
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    n = T - 2
    return n * mom.m6 + (d - 1) * mom.m24 * harmonic(n), n * mom.m4


def expected_loss(c: float, mom: Moments, d: int, T: int) -> float:
    """Expected training loss per sequence of the diagonal model with a_j b_j = c (official normalisation)."""
    A, B = _coefficients(mom, d, T)
    return 0.5 * d * (A * c * c - 2 * B * c + (T - 2) * mom.m2)


def expected_mse_last(c: float, mom: Moments, d: int, T: int) -> float:
    """½ Σ_j E|ŷ_{T,j} − x_{T,j}|² at the last position (query t = T−1), diagonal model with ab = c."""
    return 0.5 * d * (c * c * mom.m6 - 2 * c * mom.m4 + mom.m2 + c * c * (d - 1) * mom.m24 / (T - 2))


@dataclass(frozen=True)
class TheoryPrediction:
    d: int
    T: int
    moments: Moments
    A: float
    B: float
    predicted_ab: float  # ab* at this T
    predicted_ab_limit: float  # m₄/m₆ (T → ∞)
    predicted_ratio: float  # E[ŷ_j/x_j | x_{1j} ≠ 0] at ab* (every position)
    predicted_ratio_limit: float
    predicted_mse_last: float  # ½ Σ_j E|ŷ_T − x_T|² at ab*
    predicted_loss: float  # expected training loss at ab*
    recovery_gap: float  # 1 − m₄²/(m₂m₆) ∈ [0, 1]; 0 iff the learned map recovers W (T → ∞; Theorem 4.2)
    recovers: bool
    assumption_holds: bool

    def as_dict(self) -> dict[str, object]:
        out = {k: v for k, v in self.__dict__.items() if k != "moments"}
        out["moments"] = dict(self.moments.__dict__)
        return out


def predict_theory(mom: Moments, d: int, T: int) -> TheoryPrediction:
    """Fixed point ab* (the limit of ab in Theorem 4.1), its T → ∞ limit, the ratio and MSE it implies
    (Proposition 4.1's failure for Gaussian x₁), and the recovery condition (Theorem 4.2 / Assumption 4.2)."""
    A, B = _coefficients(mom, d, T)
    ab = B / A
    limit = mom.m4 / mom.m6
    cond = mom.m2 / mom.p_nonzero  # E[|x_{1j}|² | x_{1j} ≠ 0]
    gap = max(0.0, 1.0 - mom.m4**2 / (mom.m2 * mom.m6))
    return TheoryPrediction(
        d=d,
        T=T,
        moments=mom,
        A=A,
        B=B,
        predicted_ab=ab,
        predicted_ab_limit=limit,
        predicted_ratio=ab * cond,
        predicted_ratio_limit=limit * cond,
        predicted_mse_last=expected_mse_last(ab, mom, d, T),
        predicted_loss=expected_loss(ab, mom, d, T),
        recovery_gap=gap,
        recovers=bool(mom.assumption_holds and gap < 1e-6),
        assumption_holds=mom.assumption_holds,
    )


def stable_lr(mom: Moments, d: int, T: int, a0: float, b0: float, *, safety: float = 0.5) -> float:
    """A learning rate for full-batch GD that stays stable along the whole diagonal trajectory.

    The Jacobian of the per-coordinate gradient field (b, a)(Ac − B) has largest eigenvalue at most
    A(a² + b²) + |Ac − B|; along the flow a² − b² = δ is conserved and c moves monotonically from c₀ to c*, so
    λ_max ≤ A(√(δ² + 4 max(c₀², c*²)) + |c₀ − c*|). We return ``safety``·2/λ_max: it scales as 1/(T m₆)
    (the reference's guidance); the paper's hand-tuned Appendix-B rates are 0.1–1.2× this limit. It covers the
    diagonal (a, b) dynamics only: the other blocks of full matrices are 2–5× stiffer, which
    `icl_dynamics.training.automatic_lr` measures.
    """
    if not 0 < safety < 1:
        raise ValueError(f"safety must be in (0, 1), got {safety}")
    A, B = _coefficients(mom, d, T)
    c0, cstar = a0 * b0, B / A
    delta = a0 * a0 - b0 * b0
    cmax = max(abs(c0), abs(cstar))
    lam = A * (math.sqrt(delta * delta + 4 * cmax * cmax) + abs(c0 - cstar))
    if lam <= 0:
        raise ValueError("cannot choose a learning rate: the loss has no curvature (is x1 identically 0?)")
    return safety * 2.0 / lam


def diagonal_gd(
    mom: Moments, d: int, T: int, a0: float, b0: float, lr: float, steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient descent on the expected loss restricted to the diagonal (a_j = a, b_j = b): the scalar
    dynamics a ← a − η b(Ac − B), b ← b − η a(Ac − B). Returns float64 (steps + 1,) trajectories of a and b."""
    A, B = _coefficients(mom, d, T)
    a_traj = torch.empty(steps + 1, dtype=torch.float64)
    b_traj = torch.empty(steps + 1, dtype=torch.float64)
    a, b = float(a0), float(b0)
    a_traj[0], b_traj[0] = a, b
    for k in range(1, steps + 1):  # a scalar recursion: nothing to vectorise
        g = A * a * b - B
        a, b = a - lr * b * g, b - lr * a * g
        a_traj[k], b_traj[k] = a, b
    return a_traj, b_traj


def gradient_flow(
    mom: Moments, d: int, T: int, a0: float, b0: float, t_end: float, steps: int = 1000
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gradient-flow ODE ȧ = −b(Ac − B), ḃ = −a(Ac − B) (the flow whose limit Theorem 4.1 states), by RK4.

    Returns (times, a, b) as float64 tensors of length ``steps + 1``. Gradient descent with rate η follows the
    flow at time η·k for small η.
    """
    A, B = _coefficients(mom, d, T)

    def f(a: float, b: float) -> tuple[float, float]:
        g = A * a * b - B
        return -b * g, -a * g

    h = t_end / steps
    ts = torch.linspace(0, t_end, steps + 1, dtype=torch.float64)
    a_traj = torch.empty(steps + 1, dtype=torch.float64)
    b_traj = torch.empty(steps + 1, dtype=torch.float64)
    a, b = float(a0), float(b0)
    a_traj[0], b_traj[0] = a, b
    for k in range(1, steps + 1):
        k1 = f(a, b)
        k2 = f(a + h / 2 * k1[0], b + h / 2 * k1[1])
        k3 = f(a + h / 2 * k2[0], b + h / 2 * k2[1])
        k4 = f(a + h * k3[0], b + h * k3[1])
        a += h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        b += h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        a_traj[k], b_traj[k] = a, b
    return ts, a_traj, b_traj
