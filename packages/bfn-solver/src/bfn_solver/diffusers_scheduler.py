"""`BFNSolverScheduler` as a diffusers scheduler (``ConfigMixin`` + ``SchedulerMixin``: ``save_config``,
``from_config``, ``from_pretrained``). Needs the optional extra: ``pip install "bfn-solver[diffusers]"``."""

from __future__ import annotations

from typing import ClassVar, Literal

try:
    from diffusers import ConfigMixin, SchedulerMixin
    from diffusers.configuration_utils import register_to_config
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'bfn_solver.diffusers_scheduler needs diffusers: pip install "bfn-solver[diffusers]" '
        "(bfn_solver.BFNSolverScheduler works without it)"
    ) from exc

from bfn_solver.scheduler import BFNSolverScheduler

__all__ = ["BFNSolverDiffusersScheduler"]


class BFNSolverDiffusersScheduler(SchedulerMixin, ConfigMixin, BFNSolverScheduler):
    config_name = "scheduler_config.json"
    _compatibles: ClassVar[list[str]] = []

    @register_to_config
    def __init__(
        self,
        data_type: Literal["continuous", "discrete"] = "continuous",
        algorithm: str = "solver++2",
        sigma_1: float = 0.001,
        num_classes: int | None = None,
        beta_1: float = 0.5625,
        eta: float | None = None,
        spacing: Literal["time", "logsnr"] = "time",
        clip: float | None = 1.0,
        final: Literal["prediction", "state"] = "prediction",
    ) -> None:
        BFNSolverScheduler.__init__(
            self,
            data_type=data_type,
            algorithm=algorithm,
            sigma_1=sigma_1,
            num_classes=num_classes,
            beta_1=beta_1,
            eta=eta,
            spacing=spacing,
            clip=clip,
            final=final,
        )
