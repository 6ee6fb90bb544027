"""AR(1) sequences x_{t+1} = W x_t with a random unitary diagonal W (the paper's data model, Sec. 3).

W = diag(e^{iθ_1}, …, e^{iθ_d}) with θ_j ~ U[0, 2π) i.i.d. per sequence, so x_t = W^{t-1} x_1 has the closed form
x_{t,j} = e^{i(t-1)θ_j} x_{1,j}; we evaluate it directly (no repeated products, no drift in |x_t|).
The initial token x_1 follows one of the paper's families (Appendix B) or any user sampler.

Layout: sequences are ``(m, T, d)`` complex tensors (sequence, time, coordinate).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gen_common.seeding import rand, randint, randn

__all__ = [
    "FAMILIES",
    "X1Dist",
    "ar_sequences",
    "complex_dtype",
    "generate_sequences",
    "random_phases",
]

FAMILIES = ("gaussian", "sparse", "ones", "custom")

# A custom x₁ sampler: (n, d, generator) -> (n, d) real or complex tensor on the CPU.
Sampler = Callable[[int, int, torch.Generator], torch.Tensor]


def complex_dtype(name: str | torch.dtype) -> torch.dtype:
    """``complex64``/``float32`` -> torch.complex64, ``complex128``/``float64`` -> torch.complex128."""
    if isinstance(name, torch.dtype):
        if name in (torch.complex64, torch.float32):
            return torch.complex64
        if name in (torch.complex128, torch.float64):
            return torch.complex128
        raise ValueError(f"unsupported dtype {name}; use complex64 or complex128")
    table = {
        "complex64": torch.complex64,
        "float32": torch.complex64,
        "fp32": torch.complex64,
        "complex128": torch.complex128,
        "float64": torch.complex128,
        "fp64": torch.complex128,
    }
    key = str(name).lower().removeprefix("torch.")
    if key not in table:
        raise ValueError(f"unknown dtype {name!r}; choose complex64 (float32) or complex128 (float64)")
    return table[key]


@dataclass(frozen=True)
class X1Dist:
    """Distribution of the first token x₁ ∈ R^d (Appendix B's three families, or a user sampler).

    - ``gaussian``: x₁ ~ N(0, σ² I) with σ = ``scale`` (satisfies Assumption 4.1 but not 4.2: Proposition 4.1).
    - ``sparse``: x₁ = ±c e_k with c = ``scale``, k uniform on {1..d}, the sign a fair coin (the paper's
      Example 4.1, which satisfies Assumption 4.2: the mesa-optimizer recovers W, Theorem 4.2).
    - ``ones``: x₁ = (1, …, 1) (violates Assumption 4.1: the learned model is not vanilla GD, Sec. 4).
    - ``custom``: ``sampler(n, d, generator)`` returns an (n, d) tensor; its moments are estimated by Monte Carlo.
    """

    family: str = "gaussian"
    scale: float = 1.0
    sampler: Sampler | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown x1 family {self.family!r}; choose one of {', '.join(FAMILIES)}")
        if self.family == "custom" and self.sampler is None:
            raise ValueError("family 'custom' needs a sampler(n, d, generator) -> (n, d) tensor")
        if self.family in ("gaussian", "sparse") and not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"x1 scale must be a positive number, got {self.scale}")

    @classmethod
    def gaussian(cls, sigma: float = 1.0) -> X1Dist:
        return cls("gaussian", float(sigma))

    @classmethod
    def sparse(cls, c: float = 1.0) -> X1Dist:
        return cls("sparse", float(c))

    @classmethod
    def ones(cls) -> X1Dist:
        return cls("ones", 1.0)

    @classmethod
    def custom(cls, sampler: Sampler, name: str = "custom") -> X1Dist:
        return cls("custom", 1.0, sampler, name)

    @property
    def label(self) -> str:
        if self.family == "gaussian":
            return f"gaussian(sigma={self.scale:g})"
        if self.family == "sparse":
            return f"sparse(c={self.scale:g})"
        if self.family == "ones":
            return "ones"
        return self.name or "custom"

    def sample(
        self, n: int, d: int, generator: torch.Generator | None = None, *, balanced: bool = False
    ) -> torch.Tensor:
        """``n`` draws of x₁ as an (n, d) float64 (or complex128, for a complex custom sampler) CPU tensor.

        ``balanced=True`` is a variance-reduction device for checking the theory at small m, whose predictions
        depend on x₁ only through m₂, m₄, m₆ and m₂₄: the gaussian family draws each coordinate from the
        4-point Gauss–Hermite law (the same moments as N(0, σ²) up to order 7), each node in exact proportion
        to its weight, and the sparse family balances its coordinate and sign. Plain Gaussian draws need
        m ≈ 10⁵ before the sample's 6th moment is within 2% of 15σ⁶.
        """
        if n < 0 or d < 1:
            raise ValueError(f"need n >= 0 and d >= 1, got n={n}, d={d}")
        if balanced and self.family == "custom":
            raise ValueError("balanced sampling is defined for the built-in families only")
        if self.family == "gaussian":
            if balanced:
                u = _stratified_uniform(n, d, generator)
                idx = torch.bucketize(u, _GH4_CDF, right=True).clamp_(max=3)
                return _GH4_NODES[idx] * self.scale
            return randn((n, d), generator, dtype=torch.float64) * self.scale
        if self.family == "sparse":
            if balanced:
                u = _stratified_uniform(n, 2, generator)
                k = (u[:, 0] * d).long().clamp_(max=d - 1)
                sign = (u[:, 1] >= 0.5).to(torch.float64) * 2 - 1
            else:
                k = randint(0, d, (n,), generator)
                sign = randint(0, 2, (n,), generator).to(torch.float64) * 2 - 1
            x = torch.zeros(n, d, dtype=torch.float64)
            x[torch.arange(n), k] = sign * self.scale
            return x
        if self.family == "ones":
            return torch.ones(n, d, dtype=torch.float64)
        assert self.sampler is not None
        try:
            x = torch.as_tensor(self.sampler(n, d, generator))
        except Exception as exc:  # user code: report it as a user error, not a traceback
            raise ValueError(
                f"custom x1 sampler {self.label!r} failed: {type(exc).__name__}: {exc} "
                "(it must be a function (n, d, generator) -> (n, d) tensor)"
            ) from exc
        if tuple(x.shape) != (n, d):
            raise ValueError(f"custom x1 sampler returned shape {tuple(x.shape)}, expected ({n}, {d})")
        x = x.detach().cpu()
        x = x.to(torch.complex128) if x.is_complex() else x.to(torch.float64)
        if not torch.isfinite(torch.view_as_real(x) if x.is_complex() else x).all():
            raise ValueError("custom x1 sampler returned NaN or inf")
        return x


# The 4-point Gauss–Hermite law for N(0, 1): nodes ±√(3 ± √6), weights (3 ∓ √6)/12 (exact moments to order 7).
_GH4_NODES = torch.tensor(
    [
        -math.sqrt(3 + math.sqrt(6)),
        -math.sqrt(3 - math.sqrt(6)),
        math.sqrt(3 - math.sqrt(6)),
        math.sqrt(3 + math.sqrt(6)),
    ],
    dtype=torch.float64,
)
_GH4_CDF = torch.cumsum(
    torch.tensor(
        [3 - math.sqrt(6), 3 + math.sqrt(6), 3 + math.sqrt(6), 3 - math.sqrt(6)], dtype=torch.float64
    )
    / 12,
    0,
)[:3]


def _stratified_uniform(n: int, k: int, generator: torch.Generator | None) -> torch.Tensor:
    """(n, k) uniforms with exactly one draw in each interval [i/n, (i+1)/n) per column (Latin hypercube)."""
    jitter = rand((n, k), generator, dtype=torch.float64)
    perms = torch.stack([torch.randperm(n, generator=generator) for _ in range(k)], dim=1)
    return (perms.to(torch.float64) + jitter) / n


def random_phases(
    m: int, d: int, generator: torch.Generator | None = None, *, stratified: bool = False
) -> torch.Tensor:
    """θ ~ U[0, 2π)^{m×d} (float64): the eigen-phases of W = diag(e^{iθ}) (optionally stratified)."""
    u = _stratified_uniform(m, d, generator) if stratified else rand((m, d), generator, dtype=torch.float64)
    return u * (2 * math.pi)


def ar_sequences(
    x1: torch.Tensor,
    theta: torch.Tensor,
    T: int,
    *,
    dtype: str | torch.dtype = "complex64",
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """x_t = diag(e^{iθ})^{t-1} x₁ for t = 1..T, evaluated in closed form in float64: an (m, T, d) tensor."""
    if x1.ndim != 2 or theta.shape != x1.shape:
        raise ValueError(f"x1 and theta must both be (m, d); got {tuple(x1.shape)} and {tuple(theta.shape)}")
    if T < 3:
        raise ValueError(f"sequence length T must be >= 3 (the first prediction is x_3), got {T}")
    steps = torch.arange(T, dtype=torch.float64)
    angle = theta.to(torch.float64)[:, None, :] * steps[None, :, None]
    x = torch.polar(torch.ones_like(angle), angle) * x1.to(torch.complex128)[:, None, :]
    return x.to(device=device, dtype=complex_dtype(dtype))


def generate_sequences(
    m: int,
    T: int,
    d: int,
    x1: X1Dist | None = None,
    *,
    generator: torch.Generator | None = None,
    dtype: str | torch.dtype = "complex64",
    device: torch.device | str | None = None,
    balanced: bool = False,
) -> torch.Tensor:
    """Draw ``m`` sequences of length ``T`` in dimension ``d``: an (m, T, d) complex tensor.

    Deterministic given ``generator`` (phases θ are drawn first, then x₁), on any device. ``balanced`` draws
    θ by Latin-hypercube stratification and x₁ as in `X1Dist.sample` (``balanced=True``), which removes most of
    the Monte Carlo noise of the moments that the theory depends on.
    """
    if m < 1:
        raise ValueError(f"need at least one sequence (m >= 1), got {m}")
    if d < 1:
        raise ValueError(f"dimension d must be >= 1, got {d}")
    dist = x1 if x1 is not None else X1Dist.gaussian(1.0)
    theta = random_phases(m, d, generator, stratified=balanced)
    first = dist.sample(m, d, generator, balanced=balanced)
    return ar_sequences(first, theta, T, dtype=dtype, device=device)
