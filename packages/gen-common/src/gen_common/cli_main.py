"""Console script ``gen-common``: what this machine offers the workspace's packages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gen_common.cli import Command, RunContext, main_for


@dataclass(frozen=True)
class InfoRun:
    """Device, torch build and the installed packages' demos."""


def info(run: InfoRun, ctx: RunContext | None = None) -> dict[str, Any]:
    import torch

    from gen_common.demo import discover_demos
    from gen_common.device import device_summary

    ctx = RunContext.of(ctx)
    return {
        **device_summary(ctx.torch_device()),
        "cuda_available": torch.cuda.is_available(),
        "cuda_build": torch.version.cuda,
        "demos": sorted(discover_demos()),
    }


COMMANDS = [Command("info", info, InfoRun)]
main = main_for(
    "gen-common",
    COMMANDS,
    description="Shared core of the gen-papers packages. `info` reports the device and the installed demos.",
)

if __name__ == "__main__":
    raise SystemExit(main())
