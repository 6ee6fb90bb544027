"""The tour's contract. Each package registers a demo function in the ``gen_common.demos`` entry-point group:

    [project.entry-points."gen_common.demos"]
    radd = "radd.demo:run_demo"

``run_demo(ctx: DemoContext) -> DemoResult`` runs the package's headline experiment offline on tiny embedded
models/data (``ctx.scale == "small"``, a minute or two on two CPU cores), or scaled up on a GPU
(``"large"``), writes its PNGs under ``ctx.out_dir``, and returns numbers, tables and figure paths.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import torch

from gen_common.jsonio import to_jsonable

__all__ = ["DEMO_GROUP", "DemoContext", "DemoResult", "Table", "discover_demos", "render_html"]

DEMO_GROUP = "gen_common.demos"


@dataclass(frozen=True)
class DemoContext:
    out_dir: Path
    device: torch.device
    scale: str = "small"  # "small": CPU-sized; "large": scaled up for a GPU
    seed: int = 0
    progress: bool | None = None

    def path(self, name: str) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / name


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class DemoResult:
    title: str
    summary: str
    metrics: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(self)


def discover_demos() -> dict[str, Any]:
    """Installed demos by name (entry points of the ``gen_common.demos`` group), sorted."""
    eps = entry_points(group=DEMO_GROUP)
    return {ep.name: ep for ep in sorted(eps, key=lambda e: e.name)}


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return html.escape(f"{v:.4g}")
    return html.escape(str(v))


def render_html(results: dict[str, dict[str, Any]], meta: dict[str, Any], out_dir: Path) -> str:
    """A self-contained report page; figures are linked relative to ``out_dir``."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>gen-papers tour</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
        "th{background:#f3f3f3}img{max-width:48%;margin:.3em;border:1px solid #ddd}.fail{color:#b00}"
        "section{border-top:2px solid #eee;margin-top:1.5em}code{background:#f6f6f6}</style></head><body>",
        "<h1>gen-papers tour</h1>",
        f"<p>{html.escape(json.dumps(to_jsonable(meta)))}</p>",
    ]
    if not results:
        parts.append(
            "<p>No demos are installed yet: packages register them in the "
            f"<code>{DEMO_GROUP}</code> entry-point group.</p>"
        )
    parts.append(
        "<ul>"
        + "".join(
            f"<li><a href='#{html.escape(n)}'>{html.escape(n)}</a> — {html.escape(r.get('status', ''))}"
            f" ({r.get('seconds', 0):.1f} s)</li>"
            for n, r in results.items()
        )
        + "</ul>"
    )
    for name, r in results.items():
        parts.append(
            f"<section id='{html.escape(name)}'><h2>{html.escape(name)}: {html.escape(r.get('title', ''))}</h2>"
        )
        if r.get("status") != "ok":
            parts.append(f"<pre class='fail'>{html.escape(r.get('error', ''))}</pre></section>")
            continue
        parts.append(f"<p>{html.escape(r.get('summary', ''))}</p>")
        metrics = r.get("metrics") or {}
        if metrics:
            parts.append(
                "<table><tr><th>metric</th><th>value</th></tr>"
                + "".join(
                    f"<tr><td style='text-align:left'>{html.escape(k)}</td><td>{_cell(v)}</td></tr>"
                    for k, v in metrics.items()
                )
                + "</table>"
            )
        for t in r.get("tables") or []:
            parts.append(
                f"<h3>{html.escape(t['title'])}</h3><table><tr>"
                + "".join(f"<th>{html.escape(str(c))}</th>" for c in t["columns"])
                + "</tr>"
                + "".join(
                    "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in t["rows"]
                )
                + "</table>"
            )
        for fig in r.get("figures") or []:
            p = Path(fig)
            rel = p.relative_to(out_dir) if p.is_absolute() and p.is_relative_to(out_dir) else p
            parts.append(
                f"<a href='{html.escape(str(rel))}'><img src='{html.escape(str(rel))}' alt='{html.escape(p.name)}'></a>"
            )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
