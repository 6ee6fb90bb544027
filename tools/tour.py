"""The project's main job: run every installed package's demo and write one report.

    uv run tools/tour.py                      # all demos, device auto, report in runs/tour/
    uv run tools/tour.py --only radd,bfn-solver --device cpu --out /tmp/tour

Each package registers ``run_demo(ctx) -> DemoResult`` in the ``gen_common.demos`` entry-point group. On a CPU
the demos run at small scale (the whole tour stays within about ten minutes on two cores); on a GPU
(``--device cuda`` or auto with CUDA present) they run scaled up. Writes ``index.html`` (tables and PNG plots)
and ``results.json``. A demo that fails is reported and the others still run; the exit code is 1 then.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path

import torch

from gen_common import atomic_write_json, atomic_write_text, device_summary, resolve_device
from gen_common.cli import progress
from gen_common.demo import DemoContext, discover_demos, render_html
from gen_common.jsonio import to_jsonable


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated demo names (default: all installed)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    ap.add_argument("--out", default="runs/tour", help="report folder (default: %(default)s)")
    ap.add_argument(
        "--scale",
        choices=["auto", "small", "large"],
        default="auto",
        help="auto: large on CUDA, small elsewhere",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--list", action="store_true", help="list the installed demos and exit")
    args = ap.parse_args(argv)

    demos = discover_demos()
    if args.list:
        for name, ep in demos.items():
            print(f"{name}: {ep.value}")
        return 0
    wanted = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in demos]
    if unknown:
        print(
            f"error: unknown demo(s) {', '.join(unknown)}; installed: {', '.join(demos) or 'none'}",
            file=sys.stderr,
        )
        return 2
    names = wanted or list(demos)
    try:
        device = resolve_device(args.device)
    except (ValueError, RuntimeError) as exc:  # e.g. --device cuda on a machine without CUDA
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scale = args.scale if args.scale != "auto" else ("large" if device.type == "cuda" else "small")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"tour: {len(demos)} demo(s) installed ({', '.join(demos) or 'none'}); running {len(names)} on {device} "
        f"at {scale} scale -> {out}",
        file=sys.stderr,
    )

    results: dict[str, dict] = {}
    meta = {
        "device": device_summary(device),
        "scale": scale,
        "seed": args.seed,
        "python": platform.python_version(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "installed": list(demos),
    }
    bar = progress(names, desc="tour", leave=True)
    for name in bar:
        bar.set_postfix_str(name)
        ctx = DemoContext(out_dir=out / name, device=device, scale=scale, seed=args.seed)
        t0 = time.perf_counter()
        try:
            torch.manual_seed(args.seed)  # demos take explicit generators; this only pins stray global draws
            res = demos[name].load()(ctx)
            entry = {"status": "ok", **res.to_json()}
        except Exception as exc:  # one broken demo must not hide the others
            entry = {
                "status": "failed",
                "error": "".join(traceback.format_exception(exc))[-4000:],
                "title": name,
            }
        entry["seconds"] = time.perf_counter() - t0
        results[name] = entry
        status = "ok" if entry["status"] == "ok" else "FAILED"
        print(f"  {name}: {status} in {entry['seconds']:.1f} s", file=sys.stderr)
    meta["seconds"] = sum(r["seconds"] for r in results.values())
    atomic_write_json(out / "results.json", {"meta": meta, "demos": results})
    atomic_write_text(out / "index.html", render_html(results, meta, out))
    failed = [n for n, r in results.items() if r["status"] != "ok"]
    summary = {
        "report": str(out / "index.html"),
        "results": str(out / "results.json"),
        "ran": names,
        "failed": failed,
        "seconds": round(meta["seconds"], 1),
    }
    if not demos:
        summary["note"] = (
            "no demos are installed yet; packages register them in the gen_common.demos entry-point group"
        )
    print(json.dumps(to_jsonable(summary)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
