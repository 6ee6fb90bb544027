"""Console script ``gen-common``: what this machine offers the workspace's packages."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch

from gen_common.cli import add_common_args, emit, run_cli
from gen_common.demo import discover_demos
from gen_common.device import device_summary, resolve_device


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gen-common",
        description="Shared core of the gen-papers packages. `info` reports the device and the installed demos.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="device, torch build and installed package demos")
    add_common_args(info)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    dev = resolve_device(args.device)
    result = {
        **device_summary(dev),
        "cuda_available": torch.cuda.is_available(),
        "cuda_build": torch.version.cuda,
        "demos": sorted(discover_demos()),
    }
    emit(result, as_json=args.json)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv, prog="gen-common")
