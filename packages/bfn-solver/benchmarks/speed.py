"""Wall-clock of sampling with a network: the original BFN sampler at ``--baseline-steps`` vs a solver at
``--steps`` (default: the NFE at which BFN-Solver++2 matches BFN@1000 on the toy bench), on a small UNetVDM,
timed alternately in one run with gen_common.bench.compare. Per-step overhead of the solvers is a few tensor
operations, so the ratio tracks the NFE ratio.

    uv run python packages/bfn-solver/benchmarks/speed.py --device cpu --batch 8
"""

from __future__ import annotations

import argparse
import json

import torch
from bfn_solver import BFNImageConfig, BFNImageModel, sample_continuous

from gen_common.bench import compare
from gen_common.device import resolve_device


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--baseline-steps", type=int, default=200)
    p.add_argument("--method", default="solver++2")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    dev = resolve_device(args.device)
    torch.manual_seed(0)
    net = (
        BFNImageModel(BFNImageConfig(embedding_dim=32, n_blocks=4, norm_groups=8, image_size=16))
        .to(dev)
        .eval()
    )
    shape = (args.batch, 16, 16, 3)

    def run(method: str, steps: int):
        return lambda: sample_continuous(
            net, shape, steps, method, torch.Generator().manual_seed(0), device=dev
        )

    res = compare(
        run("bfn", args.baseline_steps), run(args.method, args.steps), repeats=args.repeats, device=dev
    )
    print(
        json.dumps(
            {
                "device": str(dev),
                "baseline": f"bfn@{args.baseline_steps}",
                "candidate": f"{args.method}@{args.steps}",
                **res.as_dict(),
            }
        )
    )


if __name__ == "__main__":
    main()
