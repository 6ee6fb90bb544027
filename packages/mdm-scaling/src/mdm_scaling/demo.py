"""The tour's demo for mdm-scaling (not yet implemented)."""

from __future__ import annotations

from gen_common.demo import DemoContext, DemoResult


def run_demo(ctx: DemoContext) -> DemoResult:
    return DemoResult(
        title="mdm-scaling", summary="This package is still being built; its demo comes with it."
    )
