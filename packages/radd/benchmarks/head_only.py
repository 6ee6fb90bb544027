"""Head only where it is read vs the old persistent (N, L, V) output buffer: peak memory and time per sample.

The old sampler (kept here, and only here, as the baseline) evaluated the full output head of every evaluated row
and stored it in an (N, L, V) buffer; `radd.sample` now asks the model for its head only at the positions the step
reveals (random remasking) or ranks (confidence). Each variant runs in its own subprocess so that its peak memory
(peak RSS on CPU, ``torch.cuda.max_memory_allocated`` on CUDA) is its own; the tokens' hash shows the samples are
identical. Random weights (the head is re-initialised: RADD zero-initialises it). Default size is GPT-2
(V=50257, L=1024, batch 8, 12 layers × 768); on a small CPU use the reduced preset:

    uv run --package radd-diffusion python packages/radd/benchmarks/head_only.py --small
    uv run --package radd-diffusion python packages/radd/benchmarks/head_only.py --device cuda --steps 256
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from typing import Any

import radd
import torch
from radd.categorical import filter_logits, sample_from_uniform
from radd.masked_model import eval_mode, resolve_mask_id
from radd.sampling import initial_tokens, reveal_rates

from gen_common.seeding import rand


@torch.no_grad()
def sample_full_buffer(
    model: Any,
    num_samples: int,
    length: int,
    steps: int,
    *,
    cache: bool = True,
    generator: torch.Generator | None = None,
    method: str = "analytic",
    remasking: str = "random",
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    prefix: Any = None,
    suffix: Any = None,
    schedule: Any = None,
    device: Any = "cpu",
) -> torch.Tensor:
    """The sampler before the change (radd 0.1): full head on every evaluated row into an (N, L, V) buffer."""
    mid = resolve_mask_id(model)
    dev = torch.device(device)
    x, _ = initial_tokens(num_samples, length, mid, prefix=prefix, suffix=suffix, device=dev)
    rates = reveal_rates(steps, method, schedule).tolist()
    N, L = x.shape
    stale = torch.ones(N, dtype=torch.bool, device=dev)
    outputs: torch.Tensor | None = None
    all_rows = torch.arange(N, device=dev)

    def draw(logits: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if temperature == 0:
            p, ids = torch.log_softmax(logits.float(), -1).max(-1)
            return ids, p.exp()
        return sample_from_uniform(
            filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p), u
        )

    with eval_mode(model):
        for k in range(steps):
            masked = x == mid
            u_reveal = rand((N, L), generator, dev, torch.float64)
            u_value = rand((N, L), generator, dev)
            if remasking == "random":
                reveal = masked & (u_reveal < rates[k])
                need = reveal.any(dim=1)
            else:
                n_masked = masked.sum(dim=1)
                count = (
                    n_masked if k == steps - 1 else torch.floor(n_masked.double() * rates[k] + 1e-9).long()
                )
                need = count > 0
            rows = (need & stale).nonzero().flatten() if cache else all_rows
            if rows.numel():
                out = model(x[rows])
                if outputs is None:
                    outputs = torch.empty((N, L, mid), dtype=out.dtype, device=dev)
                outputs[rows] = out
                stale[rows] = False
            if not bool(need.any()):
                continue
            assert outputs is not None
            if remasking == "random":
                r, c = reveal.nonzero(as_tuple=True)
                x[r, c] = draw(outputs[r, c], u_value[r, c])[0]
            else:
                nr = need.nonzero().flatten()
                cand, conf = draw(outputs[nr], u_value[nr])
                conf = torch.where(masked[nr], conf, -1.0)
                ranks = conf.argsort(dim=1, descending=True, stable=True).argsort(dim=1)
                chosen = (ranks < count[nr, None]) & masked[nr]
                x[nr] = torch.where(chosen, cand, x[nr])
                reveal = torch.zeros_like(masked)
                reveal[nr] = chosen
            stale |= reveal.any(dim=1)
    return x


def _model(args: argparse.Namespace) -> radd.RADD:
    torch.manual_seed(args.seed)
    cfg = radd.RADDConfig(
        vocab_size=args.vocab, max_length=args.length, hidden_size=args.hidden, num_layers=args.layers,
        num_heads=args.hidden // 64,
    )  # fmt: skip
    model = radd.RADD(cfg)
    torch.nn.init.normal_(model.head.weight, std=0.02)  # random weights: a zero head would predict uniformly
    return model.to(args.device).eval()


def _child(args: argparse.Namespace) -> None:
    model = _model(args)
    dev = torch.device(args.device)
    kw = {"remasking": args.remasking, "generator": torch.Generator().manual_seed(args.seed + 1)}
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    t0 = time.perf_counter()
    with torch.autocast(dev.type, torch.bfloat16, enabled=args.bf16):
        if args.variant == "full-buffer":
            tokens = sample_full_buffer(model, args.batch, args.length, args.steps, device=dev, **kw)
        else:
            tokens = radd.sample(model, args.batch, args.length, args.steps, device=dev, **kw).tokens
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:  # peak RSS of this process above what it held before sampling began (model, torch, ...)
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024
    digest = hashlib.sha256(tokens.cpu().numpy().tobytes()).hexdigest()[:16]
    print(json.dumps({"seconds_per_sample": seconds / args.batch, "peak_mib": peak, "tokens": digest}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--small", action="store_true", help="2 layers, L=256, batch 2 (about a minute on 2 CPU cores)"
    )
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default 128; 32 with --small)")
    p.add_argument("--remasking", choices=("random", "confidence"), default="random")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (the head's output stays float32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--variant", choices=("full-buffer", "head-only"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.small:
        args.layers, args.length, args.batch = 2, 256, 2
    if args.steps is None:
        args.steps = 32 if args.small else 128
    if args.variant:
        return _child(args)
    passthrough = [a for a in sys.argv[1:] if a != "--json"]
    res = {}
    for variant in ("full-buffer", "head-only"):
        out = subprocess.run(
            [sys.executable, __file__, *passthrough, "--variant", variant],
            check=True,
            capture_output=True,
            text=True,
        )
        res[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    old, new = res["full-buffer"], res["head-only"]
    summary = {
        "size": {k: getattr(args, k) for k in ("vocab", "length", "batch", "layers", "hidden", "steps")},
        "device": args.device,
        "remasking": args.remasking,
        "full_buffer": old,
        "head_only": new,
        "memory_ratio": old["peak_mib"] / max(new["peak_mib"], 1e-9),
        "speedup": old["seconds_per_sample"] / new["seconds_per_sample"],
        "identical": old["tokens"] == new["tokens"],
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(f"size {summary['size']} device {args.device} remasking {args.remasking}")
    for name, r in (("full buffer (old)", old), ("head only (new)", new)):
        print(f"  {name:18s} peak {r['peak_mib']:9.1f} MiB  {r['seconds_per_sample']:8.3f} s/sample")
    print(
        f"  peak memory ratio old/new {summary['memory_ratio']:.2f}, speed-up {summary['speedup']:.2f}, "
        f"samples identical: {summary['identical']}"
    )


if __name__ == "__main__":
    main()
