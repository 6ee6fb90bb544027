"""Console script ``radd``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gen_common.cli import run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radd",
        description="Reparameterized absorbing discrete diffusion (RADD): time-independent masked model, DCE likelihoods, cached samplers.",
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
    return run_cli(_main, argv, prog="radd")
