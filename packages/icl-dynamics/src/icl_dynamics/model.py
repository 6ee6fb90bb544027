"""One-layer linear causal self-attention without residual, the paper's model (Sec. 3).

    ŷ_{t+1} = W^{PV} (Σ_{i≤t} e_i e_iᴴ) W^{KQ} e_t / ρ_t,   e_t = [x_t; x_{t-1}],   ρ_t = t − 1,

with full complex W^{KQ} ∈ C^{2d×2d} and W^{PV} ∈ C^{d×2d}, initialised as in the paper's Assumption 3.1 (the
diagonal initialisation; its number from the captions of the paper's Figs. 5 and 7) and the official code:
W^{KQ}[d:, :d] = a₀ I, W^{PV}[:, :d] = b₀ I, every other entry 0.
At such a point ŷ_{t+1} = (ab/(t−1)) Σ_{i=2}^{t} x_i x_{i−1}ᴴ x_t: one gradient-descent step from 0 on the
in-context least-squares problem ½ Σ_i ‖x_i − W x_{i−1}‖² (the mesa-optimizer whose emergence under
Assumption 4.1 is the paper's Theorem 4.1).

Predictions are made for t = 2..T−1 (targets x_3..x_T), all prefixes at once through the cached prefix Grams
of `icl_dynamics.prefix` (O(T) per sequence instead of the official O(T²) loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gen_common.pretrained import PretrainedMixin
from icl_dynamics.data import complex_dtype
from icl_dynamics.prefix import PrefixGram, embed

__all__ = [
    "LSAConfig",
    "LinearSelfAttention",
    "active_masks",
    "check_sequences",
    "predict",
    "query_rho",
]


@dataclass(frozen=True)
class LSAConfig:
    d: int = 5
    a0: float = 0.1  # W^{KQ}[d:, :d] = a₀ I at initialisation
    b0: float = 0.1  # W^{PV}[:, :d] = b₀ I at initialisation
    dtype: str = "complex64"  # complex128 for theory checks on the CPU


def check_sequences(x: torch.Tensor, d: int | None = None) -> torch.Tensor:
    """Validate an (m, T, d) batch of sequences and return it as a complex tensor."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"sequences must be a torch.Tensor of shape (m, T, d), got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(f"sequences must have shape (m, T, d), got {tuple(x.shape)}")
    if x.shape[1] < 3:
        raise ValueError(f"sequences need T >= 3 tokens (the first prediction is x_3), got T={x.shape[1]}")
    if d is not None and x.shape[2] != d:
        raise ValueError(f"sequences have dimension {x.shape[2]} but the model has d={d}")
    if not x.is_complex():
        x = x.to(torch.complex128 if x.dtype == torch.float64 else torch.complex64)
    if not torch.isfinite(torch.view_as_real(x)).all():
        raise ValueError("sequences contain NaN or inf")
    return x


def active_masks(d: int, *, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks of the mesa-optimizer's entries: diag of W^{KQ}[d:, :d] and of W^{PV}[:, :d]."""
    kq = torch.zeros(2 * d, 2 * d, dtype=torch.bool, device=device)
    pv = torch.zeros(d, 2 * d, dtype=torch.bool, device=device)
    idx = torch.arange(d, device=device)
    kq[d + idx, idx] = True
    pv[idx, idx] = True
    return kq, pv


def query_rho(T: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """ρ_t = t − 1 for the query positions t = 2..T−1 (0-indexed 1..T−2)."""
    return torch.arange(1, T - 1, dtype=dtype, device=device)


def predict(
    wpv: torch.Tensor,
    wkq: torch.Tensor,
    x: torch.Tensor,
    *,
    gram: PrefixGram | None = None,
    strategy: str = "auto",
) -> torch.Tensor:
    """All prefix predictions ŷ_3..ŷ_T: (m, T−2, d). Differentiable in ``wpv`` and ``wkq``."""
    e = gram.e if gram is not None else embed(x)
    g = gram if gram is not None else PrefixGram(e, strategy)
    q = e @ wkq.transpose(0, 1)  # q_t = W^{KQ} e_t (row form)
    w = g.apply(q)[:, 1:-1]  # S_t q_t at t = 2..T−1
    rho = query_rho(e.shape[1], e.real.dtype, e.device)
    return (w @ wpv.transpose(0, 1)) / rho[None, :, None]


def _complex_to_real(module: nn.Module, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    for name in ("wkq", "wpv"):
        key = prefix + name
        if key in state and state[key].is_complex():
            state[key] = torch.view_as_real(state[key])


def _real_to_complex(module: nn.Module, state: dict[str, Any], prefix: str, *args: Any) -> None:
    for name in ("wkq", "wpv"):
        key = prefix + name
        value = state.get(key)
        if (
            isinstance(value, torch.Tensor)
            and not value.is_complex()
            and value.ndim == 3
            and value.shape[-1] == 2
        ):
            state[key] = torch.view_as_complex(value.contiguous())


class LinearSelfAttention(PretrainedMixin, nn.Module):
    """The paper's one-layer linear causal self-attention with complex parameters ``wkq``, ``wpv``.

    ``model(x)`` returns the predictions of x_3..x_T for a batch ``x`` of shape (m, T, d).
    """

    config_class = LSAConfig

    def __init__(self, config: LSAConfig) -> None:
        super().__init__()
        if config.d < 1:
            raise ValueError(f"d must be >= 1, got {config.d}")
        self.config = config
        d = config.d
        dtype = complex_dtype(config.dtype)
        wkq = torch.zeros(2 * d, 2 * d, dtype=dtype)
        wkq[d:, :d] = config.a0 * torch.eye(d, dtype=torch.float64)
        wpv = torch.zeros(d, 2 * d, dtype=dtype)
        wpv[:, :d] = config.b0 * torch.eye(d, dtype=torch.float64)
        self.wkq = nn.Parameter(wkq)
        self.wpv = nn.Parameter(wpv)
        # safetensors has no complex128: state dicts carry each complex matrix as a real (..., 2) view
        # (re, im), for both precisions, and loading turns it back.
        self.register_state_dict_post_hook(_complex_to_real)
        self.register_load_state_dict_pre_hook(_real_to_complex)

    @property
    def d(self) -> int:
        return self.config.d

    def forward(
        self, x: torch.Tensor, *, gram: PrefixGram | None = None, strategy: str = "auto"
    ) -> torch.Tensor:
        x = check_sequences(x, self.d).to(device=self.wkq.device, dtype=self.wkq.dtype)
        return predict(self.wpv, self.wkq, x, gram=gram, strategy=strategy)

    # Accessors for the mesa-optimizer's parameters. ŷ is invariant under W^{KQ} → e^{iφ}W^{KQ},
    # W^{PV} → e^{−iφ}W^{PV} (and, in expectation, under per-coordinate phases), and finite-sample gradient noise
    # moves along that flat direction; so we report the invariant Re(a_j b_j). The official code multiplies
    # real parts, Re(a_j)·Re(b_j), which agrees while the parameters stay real but drifts with the phase.
    @property
    def a(self) -> torch.Tensor:
        """diag(W^{KQ}[d:, :d]) (complex a_j)."""
        d = self.d
        return self.wkq.detach()[d:, :d].diagonal().clone()

    @property
    def b(self) -> torch.Tensor:
        """diag(W^{PV}[:, :d]) (complex b_j)."""
        d = self.d
        return self.wpv.detach()[:, :d].diagonal().clone()

    @property
    def ab_per_coord(self) -> torch.Tensor:
        """Re(a_j b_j) for each coordinate (float)."""
        return (self.a * self.b).real

    @property
    def ab(self) -> float:
        """Mean over coordinates of Re(a_j b_j): the quantity the theory predicts."""
        return float(self.ab_per_coord.mean())

    @property
    def max_offdiag(self) -> float:
        """Largest |entry| outside the two mesa-optimizer diagonals (0 while the paper's structure holds)."""
        kq_mask, pv_mask = active_masks(self.d, device=self.wkq.device)
        kq = self.wkq.detach().abs().masked_fill(kq_mask, 0)
        pv = self.wpv.detach().abs().masked_fill(pv_mask, 0)
        return float(torch.maximum(kq.max(), pv.max()))
