"""A self-contained ``report.html``: summary, pruning decisions, plots inlined as PNG data URIs."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from ..artifacts import atomic_write_text, read_json
from .plots import plot_kept_channels, plot_latency_distributions, plot_mss_curves, plot_speedup
from .report import summary_lines

__all__ = ["write_html_report"]

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px}"
    "th{background:#f0f3f7}.warn{background:#fff3cd;border:1px solid #e0b400;padding:8px}img{max-width:100%}"
)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def write_html_report(run: str | os.PathLike[str], summary: dict[str, Any]) -> Path:
    """Write ``RUN/report.html`` (no external resources, no scripts) and return its path."""
    root = Path(run)
    plan = read_json(root / "pruned" / "plan.json", what="pruning plan")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>cosep-deploy report</title>"
        f"<style>{_CSS}</style></head><body>",
        "<h1>cosep-deploy run report</h1>",
        f"<p>Run directory: <code>{html.escape(str(root))}</code></p>",
    ]
    if summary.get("synthetic_data"):
        parts.append("<p class='warn'>Synthetic data: accuracy numbers are meaningless; timings only.</p>")
    parts += [
        "<h2 id='summary'>Summary</h2>",
        _table(["metric", "dense", "pruned", "ratio"], [list(r) for r in summary_lines(summary)]),
    ]
    parts += [
        "<h2 id='pruning'>Pruning decisions per group</h2>",
        _table(
            ["group root", "channels", "kept", "knee k", "fallback", "rule"],
            [
                [g["root"], g["size"], g["n_kept"], g["k"], g["fallback"], g.get("count_rule", "")]
                for g in plan["groups"]
            ],
        ),
        _img(plot_kept_channels(plan), "kept channels per group"),
        "<h2 id='mss'>MSS curves and knees</h2>",
        _img(plot_mss_curves(plan), "MSS curves"),
    ]
    bench_file = root / "bench" / "bench.json"
    if bench_file.is_file():
        bench = read_json(bench_file)
        parts += [
            "<h2 id='latency'>Latency</h2>",
            _img(plot_latency_distributions(bench), "latency distributions"),
            _img(plot_speedup(bench), "speed-up per batch size"),
            "<h2 id='environment'>Benchmark settings and environment</h2>",
            _table(["setting", "value"], [[k, v] for k, v in bench["settings"].items()]),
            _table(["environment", "value"], [[k, v] for k, v in bench["environment"].items()]),
        ]
    else:
        parts.append("<h2 id='latency'>Latency</h2><p>The benchmark has not run for this run directory.</p>")
    parts.append("</body></html>")
    out = root / "report.html"
    atomic_write_text(out, "\n".join(parts) + "\n")
    return out
