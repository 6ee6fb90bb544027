"""Console script ``mdm-scaling``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gen_common.cli import run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mdm-scaling",
        description="Masked diffusion language models at scale: matched MDM/ARM training, IsoFLOP scaling laws, unsupervised CFG, zero-shot scoring.",
    )
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv, prog="mdm-scaling")
