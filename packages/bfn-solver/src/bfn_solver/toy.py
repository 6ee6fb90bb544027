"""Toy data with exact BFN denoisers: Gaussian mixtures (continuous, any dimension) and categorical joints
(discrete). With these the samplers can be judged against the true distribution, free of network error.

- `GaussianMixture`: under the BFN forward process ``μ_t = γ x + sqrt(γ(1 − γ)) ε`` each component k gives
  ``μ_t | k ~ N(γ m_k, γ² s_k² + γ(1 − γ))`` (diagonal), so the posterior over components and the posterior mean
  ``x̂ = E[x | μ_t]`` are closed-form; `ExactMixtureModel` returns the exact ``ε̂ = (μ − γ x̂)/sqrt(γ(1 − γ))``.
- `CategoricalJoint`: for latents ``z_l = β(K e_{x_l} − 1) + sqrt(Kβ) ε`` the likelihood is ∝ exp(z_l[x_l]), so
  ``p(x | z) ∝ p(x) Π_l exp(z_l[x_l])`` whatever β; `ExactCategoricalModel` returns its per-position log-marginals.
  It needs only log θ = z − logsumexp(z), which the network input θ = softmax(z) determines.
- `ContinuousMLP` / `DiscreteMLP`: small networks the trainer fits to these toys (noise prediction over flat
  vectors; class logits over short categorical sequences), saved with ``save_pretrained``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn

from bfn_solver.schedules import ContinuousSchedule, DiscreteSchedule
from gen_common.pretrained import PretrainedMixin
from gen_common.seeding import randn

__all__ = [
    "CategoricalJoint",
    "ContinuousMLP",
    "ContinuousMLPConfig",
    "DiscreteMLP",
    "DiscreteMLPConfig",
    "ExactCategoricalModel",
    "ExactMixtureModel",
    "GaussianMixture",
]


@dataclass(frozen=True)
class GaussianMixture:
    """Mixture of diagonal Gaussians: weights (C,), means (C, D), stds (C, D) (float64)."""

    weights: torch.Tensor
    means: torch.Tensor
    stds: torch.Tensor

    def __post_init__(self) -> None:
        w, m, s = self.weights, self.means, self.stds
        if m.ndim != 2 or w.shape != (m.shape[0],) or s.shape != m.shape:
            raise ValueError(
                f"expected weights (C,), means (C, D), stds (C, D); got {tuple(w.shape)}, {tuple(m.shape)}, "
                f"{tuple(s.shape)}"
            )
        if (w < 0).any() or not math.isclose(float(w.sum()), 1.0, rel_tol=1e-6):
            raise ValueError("mixture weights must be non-negative and sum to 1")
        if (s <= 0).any():
            raise ValueError("mixture stds must be > 0")

    @classmethod
    def create(cls, weights, means, stds) -> GaussianMixture:
        m = torch.as_tensor(means, dtype=torch.float64)
        if m.ndim == 1:
            m = m[:, None]
        w = torch.as_tensor(weights, dtype=torch.float64)
        s = torch.as_tensor(stds, dtype=torch.float64)
        if s.ndim == 0:
            s = s.expand(m.shape[0])
        if s.ndim == 1:
            s = s[:, None].expand(m.shape)
        return cls(w, m, s.contiguous())

    @classmethod
    def ring(cls, num_components: int = 8, radius: float = 0.6, std: float = 0.08) -> GaussianMixture:
        """2-D: equal-weight components on a circle (the usual "8 Gaussians"), inside [-1, 1]² like image data."""
        ang = 2 * math.pi * torch.arange(num_components, dtype=torch.float64) / num_components
        means = radius * torch.stack([ang.cos(), ang.sin()], dim=1)
        return cls.create(torch.full((num_components,), 1.0 / num_components), means, std)

    @classmethod
    def gaussian(cls, mean: float = 0.3, std: float = 0.5, dim: int = 1) -> GaussianMixture:
        """One Gaussian: the solvers' dynamics are then linear and the output moments exact (order checks)."""
        return cls.create([1.0], torch.full((1, dim), mean), std)

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def mean(self) -> torch.Tensor:
        return (self.weights[:, None] * self.means).sum(0)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples (n, D) in float64: component by inverse CDF of a uniform, then Gaussian noise."""
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        k = torch.searchsorted(torch.cumsum(self.weights, 0), u).clamp(max=len(self.weights) - 1)
        return self.means[k] + self.stds[k] * randn((n, self.dim), generator, dtype=torch.float64)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        var = self.stds**2
        lp = -0.5 * (((x[:, None, :] - self.means) ** 2) / var + torch.log(2 * math.pi * var)).sum(-1)
        return torch.logsumexp(lp + torch.log(self.weights), dim=1)

    def posterior_mean(self, mu: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """E[x | μ] for μ = γ x + sqrt(γ(1 − γ)) ε with per-row γ (B,) (float64); E[x] where γ = 0."""
        mu = mu.double()
        dev = mu.device
        weights, means, stds = self.weights.to(dev), self.means.to(dev), self.stds.to(dev)
        gamma = gamma.double().reshape(-1).to(dev)
        # Samplers evaluate a whole batch at one time: then the component variances are shared by all rows.
        same = gamma.numel() > 0 and bool((gamma == gamma[0]).all())
        g = gamma[:1].reshape(1, 1, 1) if same else gamma.reshape(-1, 1, 1)
        var_mu = g**2 * stds**2 + g * (1 - g)  # (1 or B, C, D)
        diff = mu[:, None, :] - g * means
        logp = -0.5 * (diff.square() / var_mu).sum(-1) - 0.5 * torch.log(var_mu).sum(-1) + torch.log(weights)
        resp = torch.softmax(logp, dim=1)  # (B, C)
        cond = means + (g * stds**2 / var_mu) * diff  # E[x | μ, k]
        out = torch.einsum("bc,bcd->bd", resp, cond)
        g = gamma.reshape(-1, 1).expand(out.shape[0], 1)
        return torch.where(g > 0, out, self.mean.to(dev).expand_as(out))


class ExactMixtureModel:
    """Exact noise prediction ``model(mu, t) -> ε̂`` for a `GaussianMixture` (the package's model convention).

    ``mu`` has shape (B, D), ``t`` (B,) holds BFN times; float64 inside, returned in ``mu``'s dtype.
    `data_prediction` gives x̂ directly (also at t = 0, where it is E[x]).
    """

    def __init__(self, mixture: GaussianMixture, schedule: ContinuousSchedule) -> None:
        self.mixture = mixture
        self.schedule = schedule

    def data_prediction(self, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.mixture.posterior_mean(mu, self.schedule.gamma(t.double().cpu()).to(mu.device))

    def __call__(self, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if mu.ndim != 2 or mu.shape[1] != self.mixture.dim:
            raise ValueError(f"expected mu of shape (B, {self.mixture.dim}), got {tuple(mu.shape)}")
        g = self.schedule.gamma(t.double().cpu()).to(mu.device)[:, None]
        x0 = self.mixture.posterior_mean(mu, g[:, 0])
        return ((mu.double() - g * x0) / torch.sqrt(g * (1 - g))).to(mu.dtype)


@dataclass(frozen=True)
class CategoricalJoint:
    """A joint distribution over L positions with K classes each, as a table of shape (K,)*L (float64)."""

    probs: torch.Tensor

    def __post_init__(self) -> None:
        p = self.probs
        if p.ndim < 1 or len(set(p.shape)) != 1 or p.shape[0] < 2:
            raise ValueError(f"probs must have shape (K,)*L with K >= 2, got {tuple(p.shape)}")
        if (p < 0).any() or not math.isclose(float(p.sum()), 1.0, rel_tol=1e-6):
            raise ValueError("probs must be non-negative and sum to 1")

    @classmethod
    def random(
        cls, num_classes: int = 4, length: int = 2, concentration: float = 0.3, seed: int = 0
    ) -> CategoricalJoint:
        """A random, peaked (hence correlated) joint: w = E^(1/c) with E ~ Exp(1), normalised. Smaller
        ``concentration`` c gives peakier tables."""
        g = torch.Generator().manual_seed(seed)
        e = -torch.log(torch.rand((num_classes,) * length, generator=g, dtype=torch.float64))
        w = e ** (1.0 / concentration)
        return cls(w / w.sum())

    @property
    def num_classes(self) -> int:
        return int(self.probs.shape[0])

    @property
    def length(self) -> int:
        return int(self.probs.ndim)

    @property
    def states(self) -> torch.Tensor:
        """All K^L joint states as ids (S, L), in the row-major order of ``probs.flatten()``."""
        k, l = self.num_classes, self.length
        return torch.tensor(list(itertools.product(range(k), repeat=l)), dtype=torch.long).reshape(-1, l)

    def marginals(self) -> torch.Tensor:
        """Per-position marginals (L, K)."""
        l = self.length
        # (torch sums over every dim when given an empty tuple, hence the explicit L = 1 case)
        if l == 1:
            return self.probs[None].clone()
        return torch.stack([self.probs.sum(dim=tuple(j for j in range(l) if j != i)) for i in range(l)])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        flat = self.probs.flatten()
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        idx = torch.searchsorted(torch.cumsum(flat, 0), u).clamp(max=flat.numel() - 1)
        return self.states[idx]

    def state_index(self, x: torch.Tensor) -> torch.Tensor:
        """Flat index of each joint state (B,) for ids (B, L)."""
        k = self.num_classes
        powers = k ** torch.arange(self.length - 1, -1, -1, device=x.device)
        return (x.long() * powers).sum(-1)

    def histogram(self, x: torch.Tensor) -> torch.Tensor:
        """Empirical joint distribution of samples (B, L) as a flat table (K^L,)."""
        idx = self.state_index(x).cpu()
        return torch.bincount(idx, minlength=self.probs.numel()).double() / max(1, x.shape[0])

    def total_variation(self, x: torch.Tensor) -> float:
        """TV distance between the empirical joint of samples (B, L) and the true joint."""
        return 0.5 * float((self.histogram(x) - self.probs.flatten()).abs().sum())


class ExactCategoricalModel:
    """Exact ``model(theta, t) -> logits`` (per-position log-marginals of p(x | z)) for a `CategoricalJoint`.

    ``theta`` has shape (B, L, K); ``t`` is accepted and ignored (the posterior given z does not depend on β).
    """

    def __init__(self, joint: CategoricalJoint) -> None:
        self.joint = joint
        k, l = joint.num_classes, joint.length
        states = joint.states
        self._onehot = torch.nn.functional.one_hot(states, k).to(torch.float64).reshape(-1, l * k)  # (S, L·K)
        self._log_prior = torch.log(joint.probs.flatten().clamp_min(1e-300))

    def __call__(self, theta: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        k, l = self.joint.num_classes, self.joint.length
        if theta.ndim != 3 or theta.shape[1:] != (l, k):
            raise ValueError(f"expected theta of shape (B, {l}, {k}), got {tuple(theta.shape)}")
        onehot = self._onehot.to(theta.device)
        logtheta = torch.log(theta.double().clamp_min(1e-300)).reshape(-1, l * k)
        logpost = logtheta @ onehot.T + self._log_prior.to(theta.device)  # (B, S)
        post = torch.softmax(logpost, dim=-1)
        marg = (post @ onehot).reshape(-1, l, k)
        return torch.log(marg.clamp_min(1e-300)).to(theta.dtype)


# --- Small networks for the toy data ----------------------------------------------------------------------------


def _time_features(t: torch.Tensor, n: int) -> torch.Tensor:
    """[t, sin(2π f t), cos(2π f t)] for f = 1..n/2: smooth features of the BFN time in [0, 1]."""
    freqs = torch.arange(1, n // 2 + 1, device=t.device, dtype=t.dtype)
    arg = 2 * math.pi * t[:, None] * freqs
    return torch.cat([t[:, None], arg.sin(), arg.cos()], dim=1)


def _mlp(d_in: int, d_out: int, hidden: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = d_in
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.SiLU()]
        d = hidden
    mods.append(nn.Linear(d, d_out))
    return nn.Sequential(*mods)


@dataclass(frozen=True)
class ContinuousMLPConfig:
    dim: int = 2
    hidden: int = 128
    layers: int = 3
    time_features: int = 16
    sigma_1: float = 0.001


class ContinuousMLP(PretrainedMixin, nn.Module):
    """``model(mu (B, D), t (B,)) -> ε̂ (B, D)``. The input mean is divided by its prior scale
    sqrt(γ(1 − γ) + γ²) so the network sees O(1) inputs at every t."""

    config_class = ContinuousMLPConfig

    def __init__(self, config: ContinuousMLPConfig) -> None:
        super().__init__()
        self.config = config
        self.net = _mlp(config.dim + config.time_features + 1, config.dim, config.hidden, config.layers)

    @property
    def schedule(self) -> ContinuousSchedule:
        return ContinuousSchedule(self.config.sigma_1)

    def forward(self, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if mu.ndim != 2 or mu.shape[1] != self.config.dim:
            raise ValueError(f"expected mu of shape (B, {self.config.dim}), got {tuple(mu.shape)}")
        g = self.schedule.gamma(t.detach().double().cpu()).to(device=mu.device, dtype=mu.dtype)
        scale = torch.sqrt(g * (1 - g) + g**2).clamp_min(1e-6)[:, None]
        h = torch.cat([mu / scale, _time_features(t.to(mu.dtype), self.config.time_features)], dim=1)
        return self.net(h)


@dataclass(frozen=True)
class DiscreteMLPConfig:
    length: int = 2
    num_classes: int = 4
    hidden: int = 128
    layers: int = 3
    time_features: int = 16
    beta_1: float = 3.0


class DiscreteMLP(PretrainedMixin, nn.Module):
    """``model(theta (B, L, K), t (B,)) -> logits (B, L, K)`` over the flattened input 2θ − 1."""

    config_class = DiscreteMLPConfig

    def __init__(self, config: DiscreteMLPConfig) -> None:
        super().__init__()
        self.config = config
        lk = config.length * config.num_classes
        self.net = _mlp(lk + config.time_features + 1, lk, config.hidden, config.layers)

    @property
    def schedule(self) -> DiscreteSchedule:
        return DiscreteSchedule(self.config.num_classes, self.config.beta_1)

    def forward(self, theta: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        l, k = self.config.length, self.config.num_classes
        if theta.ndim != 3 or theta.shape[1:] != (l, k):
            raise ValueError(f"expected theta of shape (B, {l}, {k}), got {tuple(theta.shape)}")
        h = torch.cat(
            [
                (2 * theta - 1).reshape(theta.shape[0], -1),
                _time_features(t.to(theta.dtype), self.config.time_features),
            ],
            1,
        )
        return self.net(h).reshape(theta.shape)
