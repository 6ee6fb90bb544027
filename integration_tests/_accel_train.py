"""Tiny RADD training for the multi-process test, launched by `accelerate launch` (see test_multiprocess_training.py).

Driven through the libraries (radd.training.train_radd on gen_common.training.train), not radd's CLI, so the
test does not depend on the CLI's flags. Each job is ``OUT_DIR:STEPS[:STOP_AFTER]``; every job starts from the same
seeded weights. Each rank records every write it makes under a job's folder (an audit hook, so even writes by
library code are seen) in ``<log>/writes.rank<R>``; the batches it trains on are hashed by gen_common's
``GEN_TRAIN_DEBUG_BATCHES`` hook. Rank 0 alone saves the final weights (``<OUT_DIR>/final.safetensors``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _audit_writes(roots: list[Path], log: Path):
    roots = [str(r.resolve()) for r in roots]

    def hook(event: str, args: tuple) -> None:
        path = None
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            mode, flags = args[1], args[2]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            path = args[0] if writing else None
        elif event in {"os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree", "os.truncate"}:
            path = args[0]
        if path is None:
            return
        p = os.path.abspath(os.fsdecode(path) if not isinstance(path, int) else "")
        if any(p.startswith(r) for r in roots):
            with open(log, "a", encoding="utf-8") as fh:  # the log itself is outside every job folder
                fh.write(f"{event} {p}\n")

    sys.addaudithook(hook)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", type=Path, required=True)
    ap.add_argument("jobs", nargs="+")
    args = ap.parse_args()
    rank = int(os.environ.get("RANK", "0"))
    jobs = []
    for job in args.jobs:
        out, steps, *stop = job.split(":")
        jobs.append((Path(out), int(steps), int(stop[0]) if stop else None))
    _audit_writes([j[0] for j in jobs], args.log / f"writes.rank{rank}")

    import torch
    from radd.data import TokenData, load_text
    from radd.model import RADD, RADDConfig
    from radd.tokenizers import CharTokenizerAdapter
    from radd.training import train_radd

    from gen_common.checkpoint import save_state_dict
    from gen_common.training import TrainConfig

    torch.set_num_threads(1)
    text = load_text(max_chars=20_000)
    tok = CharTokenizerAdapter.from_corpus(text)
    data = TokenData.from_ids(tok.encode(text), length=16)
    for out, steps, stop_after in jobs:
        # As `accelerate.utils.set_seed(seed, device_specific=True)` would: a different global RNG on each rank
        # (dropout draws differ per rank), so a resume must restore each rank's own RNG state.
        torch.manual_seed(0)
        model = RADD(RADDConfig(tok.vocab_size, 16, hidden_size=32, num_layers=1, num_heads=2, dropout=0.1))
        torch.manual_seed(1000 + rank)
        cfg = TrainConfig(steps=steps, lr=3e-3, ema_decay=0.9, log_every=1, seed=7)
        res = train_radd(
            model, data.batch_fn(4), cfg, out_dir=out / "ckpt", stop_after=stop_after, device="cpu"
        )
        sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        # Every rank reports its weights (outside the job folder) so the test can compare the ranks.
        save_state_dict(sd, args.log / f"weights-{out.name}.rank{rank}.safetensors")
        if rank == 0:
            save_state_dict(sd, out / "final.safetensors")
        # One report file per rank: two ranks printing to one shared stdout pipe can interleave within a line.
        with open(args.log / f"report.rank{rank}", "a") as f:
            f.write(f"rank {rank} {out.name}: steps {res.steps} resumed_from {res.resumed_from}\n")


if __name__ == "__main__":
    main()
