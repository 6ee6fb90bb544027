"""Measured NFE of the cached sampler vs ``radd.expected_nfe`` = n(1 − (1 − 1/n)^L), including the paper's length.

The reveal process does not depend on the network, so a stand-in masked model (uniform predictions over 4 tokens)
measures NFE at L = 1024 on a CPU in about a minute. This reproduces the README's NFE table:

    uv run --package radd-diffusion python packages/radd/benchmarks/nfe_formula.py [--json]
"""

from __future__ import annotations

import argparse
import math
import time

import radd
import torch

from gen_common.cli import emit, format_table

CASES = ((32, 16, 2000), (32, 64, 2000), (32, 256, 2000), (1024, 1024, 32), (1024, 4096, 32))


def stand_in(x: torch.Tensor) -> torch.Tensor:
    return torch.zeros(*x.shape, 4)


stand_in.mask_id = 4  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for length, steps, n in CASES:
        t0 = time.perf_counter()
        out = radd.sample(
            stand_in, n, length, steps, generator=torch.Generator().manual_seed(args.seed + steps)
        )
        per_seq = out.nfe_per_sequence.double()
        expected = radd.expected_nfe(steps, length)
        rows.append(
            {
                "length": length,
                "steps": steps,
                "sequences": n,
                "measured_nfe": out.nfe,
                "stderr": float(per_seq.std()) / math.sqrt(n),
                "expected_nfe": expected,
                "error": out.nfe / expected - 1.0,
                "nfe_ratio": steps / out.nfe,
                "seconds": time.perf_counter() - t0,
            }
        )
    cols = ["L", "steps", "seqs", "NFE", "± se", "n(1-(1-1/n)^L)", "err %", "NFE ratio"]
    keys = ("length", "steps", "sequences", "measured_nfe", "stderr", "expected_nfe", "error", "nfe_ratio")
    table = [[100 * r[k] if k == "error" else r[k] for k in keys] for r in rows]
    emit({"rows": rows}, as_json=args.json, human=lambda _: format_table(cols, table))


if __name__ == "__main__":
    main()
