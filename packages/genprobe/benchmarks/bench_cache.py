"""Training throughput and time-to-accuracy of a genprobe classifier with vs without the decoded-image cache.

    uv run python packages/genprobe/benchmarks/bench_cache.py [--device cuda] [--threads 1]

Same measurement as `genprobe bench`; prints one JSON object (ratios > 1: the cache is faster).
"""

import argparse
import json

import torch
from genprobe.bench import run_benchmark


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=1, help="decoding threads of the uncached baseline")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(run_benchmark(device=args.device, repeats=args.repeats, workers=args.workers), indent=2))


if __name__ == "__main__":
    main()
