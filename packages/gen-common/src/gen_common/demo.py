"""The tour's contract. Each package registers a demo function in the ``gen_common.demos`` entry-point group:

    [project.entry-points."gen_common.demos"]
    radd = "radd.demo:run_demo"

``run_demo(ctx: DemoContext) -> DemoResult`` runs the package's headline experiment offline on tiny embedded
models/data (``ctx.scale == "small"``, a minute or two on two CPU cores), or scaled up on a GPU
(``"large"``), writes its PNGs under ``ctx.out_dir``, and returns numbers, tables and figure paths.

``DemoResult.headline`` is the row the tour's summary table shows for the package::

    {"claim": "the paper's headline claim", "paper": "the paper's number", "measured": "what this run measured",
     "reproduces": True | False | None, "reason": "why not, or what limits the check at this scale"}

``reproduces=None`` means the claim cannot be checked at this scale (the reason says why).
``DemoResult.captions`` maps a figure's file name to its caption: what to look at in it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import torch

from gen_common.jsonio import to_jsonable

__all__ = [
    "DEMO_GROUP",
    "HEADLINE_KEYS",
    "DemoContext",
    "DemoResult",
    "Table",
    "discover_demos",
    "render_html",
]

DEMO_GROUP = "gen_common.demos"
HEADLINE_KEYS = ("claim", "paper", "measured", "reproduces", "reason")


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
    headline: dict[str, Any] | None = None  # keys HEADLINE_KEYS; see the module docstring
    captions: dict[str, str] = field(default_factory=dict)  # figure file name -> what to look at

    def __post_init__(self) -> None:
        if self.headline is not None:
            unknown = set(self.headline) - set(HEADLINE_KEYS)
            if unknown:
                raise ValueError(f"unknown headline key(s) {sorted(unknown)}; use {', '.join(HEADLINE_KEYS)}")

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(self)


def discover_demos() -> dict[str, Any]:
    """Installed demos by name (entry points of the ``gen_common.demos`` group), sorted."""
    eps = entry_points(group=DEMO_GROUP)
    return {ep.name: ep for ep in sorted(eps, key=lambda e: e.name)}


def _cell(v: Any) -> str:
    """A table cell: blank for missing values (None, NaN), 4 significant digits for floats."""
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return html.escape(f"{v:.4g}")
    return html.escape(str(v))


def _settings_line(meta: dict[str, Any], n: int) -> str:
    """The run's settings as one readable line (the full record is in results.json)."""
    dev = meta.get("device")
    if isinstance(dev, dict):
        name = str(dev.get("name") or dev.get("device", ""))
        extra = [f"torch {dev['torch']}"] if dev.get("torch") else []
        if dev.get("threads"):
            extra.append(f"{dev['threads']} threads")
        dev = f"{name} ({', '.join(extra)})" if extra else name
    bits = [
        f"device {dev}" if dev else "",
        f"scale {meta['scale']}" if meta.get("scale") else "",
        f"seed {meta['seed']}" if meta.get("seed") is not None else "",
        f"Python {meta['python']}" if meta.get("python") else "",
        f"started {meta['started']}" if meta.get("started") else "",
        f"{n} demo(s) in {meta['seconds']:.0f} s" if isinstance(meta.get("seconds"), (int, float)) else "",
    ]
    return " · ".join(html.escape(b) for b in bits if b)


def _verdict(h: dict[str, Any] | None, status: str) -> tuple[str, str]:
    if status != "ok":
        return "failed", "fail"
    if not h or "reproduces" not in h or h["reproduces"] is None:
        return ("not checked" if not h else "not testable here"), "na"
    return ("yes", "yes") if h["reproduces"] else ("no", "no")


def _summary_table(results: dict[str, dict[str, Any]]) -> str:
    head = "".join(
        f"<th>{c}</th>"
        for c in (
            "package",
            "paper's claim",
            "paper",
            "measured here (this scale)",
            "reproduces",
            "why / note",
            "time",
        )
    )
    rows = []
    for name, r in results.items():
        h = r.get("headline") or {}
        verdict, cls = _verdict(h, r.get("status", ""))
        reason = h.get("reason") or ("" if r.get("status") == "ok" else "the demo failed; see below")
        cells = [
            f"<a href='#{html.escape(name)}'>{html.escape(name)}</a>",
            _cell(h.get("claim")),
            _cell(h.get("paper")),
            _cell(h.get("measured")),
            f"<span class='{cls}'>{verdict}</span>",
            _cell(reason),
            f"{r.get('seconds', 0):.0f} s",
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table class='summary'><tr>{head}</tr>{''.join(rows)}</table>"


def _caption(fig: Path, captions: dict[str, str]) -> str:
    text = captions.get(fig.name) or fig.stem.replace("_", " ")
    return html.escape(text)


def render_html(results: dict[str, dict[str, Any]], meta: dict[str, Any], out_dir: Path) -> str:
    """A self-contained report page, headline first: one summary row per package (claim, the paper's number, what
    this run measured, whether it reproduces and why not), the run's settings in one line, then each package's
    details with captioned plots. Figures are linked relative to ``out_dir``; missing values are blank."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>gen-papers tour</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
        "th{background:#f3f3f3}.summary td{text-align:left;vertical-align:top}"
        "figure{display:inline-block;width:48%;margin:.3em;vertical-align:top}figure img{width:100%;border:1px solid #ddd}"
        "figcaption{font-size:.9em;color:#444}.fail,.no{color:#b00;font-weight:bold}.yes{color:#070;font-weight:bold}"
        ".na{color:#777}.settings{color:#555;font-size:.95em}"
        "section{border-top:2px solid #eee;margin-top:1.5em}code{background:#f6f6f6}</style></head><body>",
        "<h1>gen-papers tour</h1>",
    ]
    if not results:
        parts.append(
            "<p>No demos are installed yet: packages register them in the "
            f"<code>{DEMO_GROUP}</code> entry-point group.</p>"
        )
    else:
        parts.append("<h2>Headline results</h2>")
        parts.append(_summary_table(results))
    settings = _settings_line(meta, len(results))
    if settings:
        parts.append(f"<p class='settings'>Settings: {settings}</p>")
    for name, r in results.items():
        parts.append(
            f"<section id='{html.escape(name)}'><h2>{html.escape(name)}: {html.escape(r.get('title', ''))}</h2>"
        )
        if r.get("status") != "ok":
            parts.append(f"<pre class='fail'>{html.escape(r.get('error', ''))}</pre></section>")
            continue
        parts.append(f"<p>{html.escape(r.get('summary', ''))}</p>")
        captions = r.get("captions") or {}
        for fig in r.get("figures") or []:
            p = Path(fig)
            rel = p.relative_to(out_dir) if p.is_absolute() and p.is_relative_to(out_dir) else p
            src = html.escape(str(rel))
            parts.append(
                f"<figure><a href='{src}'><img src='{src}' alt='{html.escape(p.name)}'></a>"
                f"<figcaption>{_caption(p, captions)}</figcaption></figure>"
            )
        metrics = r.get("metrics") or {}
        if metrics:
            parts.append(
                "<h3>metrics</h3><table><tr><th>metric</th><th>value</th></tr>"
                + "".join(
                    f"<tr><td style='text-align:left'>{html.escape(k.replace('_', ' '))}</td><td>{_cell(v)}</td></tr>"
                    for k, v in metrics.items()
                )
                + "</table>"
            )
        for tab in r.get("tables") or []:
            parts.append(
                f"<h3>{html.escape(tab['title'])}</h3><table><tr>"
                + "".join(f"<th>{html.escape(str(c))}</th>" for c in tab["columns"])
                + "</tr>"
                + "".join(
                    "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in tab["rows"]
                )
                + "</table>"
            )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
