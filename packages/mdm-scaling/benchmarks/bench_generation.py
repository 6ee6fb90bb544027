"""Generation benchmarks with in-run baselines: ARM KV cache vs recomputation, radd's cached MDM sampler vs
uncached, and the cost of batched unsupervised CFG. Prints one table; ratio = baseline time / candidate time.

    uv run python packages/mdm-scaling/benchmarks/bench_generation.py [--device cuda] [--preset tiny-148k]
"""

import argparse

from mdm_scaling.bench import run_benchmarks

from gen_common.cli import format_table
from gen_common.device import resolve_device

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--preset", default="tiny-49k")
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    dev = resolve_device(a.device)
    rows = run_benchmarks(size=a.preset, length=a.length, steps=a.steps, repeats=a.repeats, device=dev)
    cols = list(rows[0])
    print(f"device: {dev}")
    print(format_table(cols, [[r[c] for c in cols] for r in rows]))
