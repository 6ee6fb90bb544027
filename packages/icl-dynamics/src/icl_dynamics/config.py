"""Settings of the gradient-descent runs (torch-free, so that the CLI's ``--help`` does not import torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gen_common.config import arg, validate

__all__ = ["GRAD_MASKS", "GDConfig"]

GRAD_MASKS = ("none", "offdiag", "diagonal")


@dataclass(frozen=True)
class GDConfig:
    """Full-batch gradient descent on the AR loss (Appendix B): the rate, the stopping rule and the masks.

    Not `gen_common.config.TrainConfig` (the workspace's AdamW training loop): this is plain GD on the whole set,
    as the paper's experiments run it.
    """

    lr: float | None = arg(None, help="learning rate (default: the stable rate from the theory)", gt=0)
    lr_safety: float = arg(
        0.5, help="fraction of the 2/λ_max stability limit the automatic rate uses", gt=0, max=1
    )
    max_epochs: int = arg(3000, help="epoch cap", min=1)
    tol: float = arg(1e-5, help="stop when |Δab| <= tol·|ab| for --patience epochs", min=0)
    patience: int = arg(5, help="epochs the change of ab must stay below --tol", min=1)
    min_epochs: int = arg(1, help="epochs run before the stopping rule applies", min=0)
    grad_mask: Literal["none", "offdiag", "diagonal"] = arg(
        "none", help="mask gradients (the paper's masked experiment: offdiag)"
    )
    eval_every: int = arg(1, help="test ratio / MSE every k epochs (0: never)", min=0, cli=False)
    snapshot_every: int = arg(
        0, help="keep W^KQ, W^PV every k epochs (0: only the final ones)", min=0, cli=False
    )
    strategy: Literal["auto", "cumsum", "blocked", "direct"] = arg("auto", help="prefix-Gram strategy")
    cache_bytes: int = arg(
        2 << 30, help="largest cached prefix-Gram tensor (strategy auto)", min=0, cli=False
    )
    max_restarts: int = arg(
        3, help="automatic rate only: on divergence restart with η/4 this many times", min=0
    )

    def __post_init__(self) -> None:
        validate(self)
