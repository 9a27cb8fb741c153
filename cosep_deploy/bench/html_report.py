"""A self-contained ``report.html``: summary, pruning decisions, plots, per-layer times (when the run has
``bench/layers.json``), benchmark settings and environment.

Self-contained means one file that opens anywhere, offline: plots are PNGs inlined as base64 data URIs, the
CSS is inline, there is no JavaScript, and a Content-Security-Policy forbids loading anything else. Every
piece of text from the run (layer names, notes, versions, baseline names) goes through ``html.escape``.
The page carries no timestamp, so the same run directory gives the same file.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cosep_deploy.artifacts import atomic_write_text, read_json
from cosep_deploy.bench.report import summary_lines
from cosep_deploy.errors import CosepError

__all__ = ["accuracy_points_from_run", "write_html_report"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;
color:#222;line-height:1.4}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #dde3ea;padding-bottom:.2em;margin-top:1.6em}
nav a{margin-right:1em}code{background:#f3f5f7;padding:0 3px}
table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccd3db;padding:3px 8px;font-size:13px;
text-align:left;vertical-align:top}th{background:#eef2f6}tr.fallback td{background:#fff4e5}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{background:#fff3cd;border:2px solid #e0a800;padding:10px 14px;font-weight:600;margin:1em 0}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #e3e7ec}figcaption{font-size:13px;color:#444}
.missing{color:#8a6d3b;font-style:italic}
"""
# No scripts, no fetches: only inline styles and data: images may load.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_SYNTHETIC = "Synthetic data: accuracy numbers are meaningless; timings only."
_POINT_KEYS = ("method", "macs", "top1", "stage")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    """One table cell's text: floats to 4 significant digits, lists joined, mappings as compact JSON."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value) if value else "-"
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    return "-" if value is None else str(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, row_class: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{_e(row_class[i])}"' if i < len(row_class) and row_class[i] else ""
        cells = "".join(
            f'<td class="num">{_e(_fmt(c))}</td>'
            if isinstance(c, int | float) and not isinstance(c, bool)
            else f"<td>{_e(_fmt(c))}</td>"
            for c in row
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(fig_id: str, png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure id="{_e(fig_id)}"><img alt="{_e(alt)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _flatten(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, Mapping) and v:
            rows += _flatten(v, f"{prefix}{k}.")
        else:
            rows.append((f"{prefix}{k}", v))
    return rows


def _check_point(p: Any, where: str) -> dict[str, Any]:
    if not isinstance(p, Mapping) or any(k not in p for k in _POINT_KEYS):
        raise CosepError(
            f"{where}: each accuracy point must be an object with keys {', '.join(_POINT_KEYS)}, got {p!r}; "
            'e.g. {"method": "l1", "macs": 1630848, "top1": 0.95, "stage": "finetuned"} (top1 as a fraction)'
        )
    top1 = p["top1"]
    if top1 is not None and (not isinstance(top1, int | float) or not 0.0 <= float(top1) <= 1.0):
        raise CosepError(f"{where}: top1 must be a fraction in [0, 1] or null, got {top1!r} for {p['method']!r}")
    if not isinstance(p["macs"], int | float) or p["macs"] <= 0:
        raise CosepError(f"{where}: macs must be a positive number, got {p['macs']!r} for {p['method']!r}")
    return {k: p[k] for k in _POINT_KEYS}


def accuracy_points_from_run(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Accuracy-vs-MACs points of a run: dense, pruned (before fine-tuning), fine-tuned, then baselines.

    Baselines are ``RUN/baselines/*.json`` files (read in name order), each a list of
    ``{"method", "macs", "top1", "stage"}`` points or an object ``{"points": [...]}``.
    """
    root = Path(run_dir)
    plan = read_json(root / "pruned" / "plan.json", what="pruning plan")
    dense_top1 = read_json(root / "dense" / "train.json", what="training record")["result"]["val_top1"]
    method = str(plan.get("method", "pruned"))
    points = [
        {"method": "dense", "macs": plan["cost_before"]["macs"], "top1": dense_top1, "stage": "dense"},
        {
            "method": method,
            "macs": plan["cost_after"]["macs"],
            "top1": read_json(root / "pruned" / "prune.json", what="pruning record")["val_top1"],
            "stage": "pruned",
        },
    ]
    if (root / "finetuned" / "finetune.json").is_file():
        tuned_plan = root / "finetuned" / "plan.json"
        macs = read_json(tuned_plan)["cost_after"]["macs"] if tuned_plan.is_file() else plan["cost_after"]["macs"]
        top1 = read_json(root / "finetuned" / "finetune.json")["result"]["val_top1"]
        points.append({"method": method, "macs": macs, "top1": top1, "stage": "finetuned"})
    for path in sorted((root / "baselines").glob("*.json")):
        data = read_json(path, what="baseline accuracy file")
        items = data.get("points") if isinstance(data, Mapping) else data
        if not isinstance(items, list):
            raise CosepError(f'{path}: expected a list of accuracy points or {{"points": [...]}}, got {type(data)}')
        points += [_check_point(p, str(path)) for p in items]
    return points


def _pruning_section(plan: Mapping[str, Any]) -> list[str]:
    groups = plan["groups"]
    rows = [
        [
            i,
            g["root"],
            len(g.get("members") or []),
            g["size"],
            g["n_kept"],
            f"{100 * g['n_kept'] / g['size']:.0f}%" if g["size"] else "-",
            g["k"],
            g.get("count_rule", "-"),
            "yes" if g.get("fallback") else "no",
            g.get("grid", "-"),
            g.get("note"),
        ]
        for i, g in enumerate(groups)
    ]
    header = ["#", "group root", "members", "channels", "kept", "kept %", "knee k", "rule", "fallback", "grid", "note"]
    config = plan.get("config") or {}
    return [
        '<section id="pruning"><h2>Pruning decisions per group</h2>',
        f"<p>Method <code>{_e(plan['method'])}</code>: {len(groups)} channel groups (coupled layers pruned "
        "together). The knee k is where the MSS curve of the group's channel clustering bends; the kept count "
        f"is k rounded up to a multiple of <code>round_to</code> = {_e(config.get('round_to', '-'))}. "
        "Fallback rows (highlighted) had no usable knee.</p>",
        _table(header, rows, row_class=["fallback" if g.get("fallback") else "" for g in groups]),
        "<details><summary>Pruning configuration</summary>",
        _table(["option", "value"], [[k, v] for k, v in config.items()]),
        "</details></section>",
    ]


def _plots_section(
    plan: Mapping[str, Any], bench: Mapping[str, Any] | None, points: Sequence[Mapping[str, Any]]
) -> list[str]:
    return [
        '<section id="plots"><h2>Plots</h2>',
        *_pruning_plots(plan),
        *_latency_plots(bench),
        *_accuracy_plot(points),
        "</section>",
    ]


def _pruning_plots(plan: Mapping[str, Any]) -> list[str]:
    from cosep_deploy.bench import plots

    return [
        _figure(
            "plot-kept-channels",
            plots.plot_kept_channels(plan),
            "kept channels per group, dense vs pruned",
            "Output channels of every group in the dense model (grey) and kept after pruning (blue).",
        ),
        _figure(
            "plot-mss-curves",
            plots.plot_mss_curves(plan),
            "MSS curves with their knees",
            "Mean Simplified Silhouette of the k-medoids clustering of each group's channels over k: a high "
            "MSS means well-separated clusters of redundant channels; CoSeP keeps one channel per cluster at "
            "the knee.",
        ),
    ]


def _latency_plots(bench: Mapping[str, Any] | None) -> list[str]:
    from cosep_deploy.bench import plots

    if bench is None:
        return [
            '<p class="missing" id="plot-latency">No benchmark in this run (bench/bench.json missing): '
            "no latency or speed-up plots. Run <code>cosep-deploy bench</code> first.</p>"
        ]
    return [
        _figure(
            "plot-latency",
            plots.plot_latency_distributions(bench),
            "latency distributions, dense vs pruned, per batch size",
            "Every timed iteration of each engine (interleaved runs, same settings); box = quartiles.",
        ),
        _figure(
            "plot-speedup",
            plots.plot_speedup(bench),
            "speed-up per batch size with confidence intervals",
            "Ratio of median latencies with its bootstrap confidence interval (resampling interleaved "
            "dense/pruned pairs); the dashed line is the MACs "
            "ratio, the speed-up that counting arithmetic alone would predict.",
        ),
    ]


def _accuracy_plot(points: Sequence[Mapping[str, Any]]) -> list[str]:
    from cosep_deploy.bench import plots

    return [
        _figure(
            "plot-accuracy",
            plots.plot_accuracy_vs_macs(points),
            "top-1 accuracy vs MACs for dense, CoSeP and baselines",
            "Top-1 on the validation split against MACs per image; points of one method are joined "
            "(pruned, then fine-tuned).",
        ),
        _table(
            ["method", "stage", "MACs (M)", "top-1"],
            [
                [
                    p["method"],
                    p["stage"],
                    f"{float(p['macs']) / 1e6:.3f}",
                    "-" if p["top1"] is None else f"{100 * float(p['top1']):.2f}%",
                ]
                for p in points
            ],
        ),
    ]


def _layers_section(layers: Mapping[str, Any]) -> list[str]:
    from cosep_deploy.bench import plots
    from cosep_deploy.bench.layer_tables import KIND_COLUMNS, LAYER_COLUMNS, kind_table, layer_table, layers_summary
    from cosep_deploy.bench.report import TOP_LAYERS

    parts = [
        '<section id="layers"><h2>Where time goes (per layer)</h2>',
        f"<p>{_e(layers_summary(layers))}</p>",
        _figure(
            "plot-layers",
            plots.plot_layer_times(layers, top=TOP_LAYERS),
            "per-layer time, dense vs pruned, for the layers with the most dense time",
            f"{str(layers.get('statistic', 'mean')).capitalize()} time per iteration of each layer in the dense "
            "engine (grey) and its counterpart in the pruned engine (blue), with the per-layer speed-up. Layers are "
            "paired by name, then by normalised name, then by kind in execution order; unpaired layers are listed "
            "below the tables.",
        ),
        f"<h3>Top {TOP_LAYERS} layers by dense time</h3>",
        _table(LAYER_COLUMNS, layer_table(layers, TOP_LAYERS)),
        "<h3>By kind of layer</h3>",
        _table(KIND_COLUMNS, kind_table(layers)),
    ]
    for side in ("dense", "pruned"):
        names = layers["unmatched"][side]
        if names:
            items = "".join(f"<li><code>{_e(n)}</code></li>" for n in names)
            parts.append(f'<p id="unmatched-{side}">Only in {side} (no counterpart found):</p><ul>{items}</ul>')
    parts.append("</section>")
    return parts


def _environment_section(
    bench: Mapping[str, Any] | None, plan: Mapping[str, Any], summary: Mapping[str, Any]
) -> list[str]:
    parts = ['<section id="environment"><h2>Benchmark settings and environment</h2>']
    if bench is not None:
        cfg = dict(bench.get("config") or {})
        cfg["input_shape (one image)"] = bench.get("input_shape")
        cfg["baseline"] = bench.get("baseline")
        cfg["seconds"] = bench.get("seconds")
        parts += [
            "<h3>Engine settings (identical for every engine)</h3>",
            _table(["setting", "value"], list((bench.get("settings") or {}).items())),
            "<h3>Timing protocol</h3>",
            _table(["option", "value"], list(cfg.items())),
            "<h3>Machine</h3>",
            _table(["environment", "value"], _flatten(bench.get("environment") or {})),
        ]
    else:
        parts.append('<p class="missing">No benchmark settings: the benchmark has not run.</p>')
    prov = plan.get("provenance") or {}
    if prov:
        parts += ["<h3>Pruning provenance</h3>", _table(["item", "value"], _flatten(prov))]
    if summary.get("stages"):
        parts += ["<h3>Stage times (s)</h3>", _table(["stage", "seconds"], list(summary["stages"].items()))]
    parts.append("</section>")
    return parts


def write_html_report(
    run_dir: str | os.PathLike[str],
    summary: Mapping[str, Any],
    *,
    extra_points: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``RUN/report.html`` atomically and return its path.

    ``summary`` is :func:`cosep_deploy.pipeline.summary_rows`' dict; ``extra_points`` are more
    accuracy-vs-MACs points (same format as :func:`accuracy_points_from_run`), added after the run's own.
    """
    root = Path(run_dir)
    plan = read_json(root / "pruned" / "plan.json", what="pruning plan")
    bench_file = root / "bench" / "bench.json"
    bench = read_json(bench_file, what="benchmark report") if bench_file.is_file() else None
    points = accuracy_points_from_run(root) + [_check_point(p, "extra_points") for p in extra_points or ()]
    layers_file = root / "bench" / "layers.json"
    layers = None
    if layers_file.is_file():
        from cosep_deploy.bench.layers import LayersReport

        layers = LayersReport.load(layers_file).to_json()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>cosep-deploy report: {_e(root.name)}</title><style>{_CSS}</style></head><body>",
        "<h1>cosep-deploy run report</h1>",
        f"<p>Run directory: <code>{_e(root)}</code></p>",
    ]
    if summary.get("synthetic_data"):
        parts.append(f'<div class="banner" id="synthetic-warning" role="alert">{_e(_SYNTHETIC)}</div>')
    parts += [
        '<nav><a href="#summary">Summary</a><a href="#pruning">Pruning decisions</a><a href="#plots">Plots</a>'
        + ('<a href="#layers">Per layer</a>' if layers is not None else "")
        + '<a href="#environment">Settings and environment</a></nav>',
        '<section id="summary"><h2>Summary</h2>',
        _table(["metric", "dense", "pruned", "ratio"], summary_lines(dict(summary))),
        "<p>MACs: multiply-accumulates of conv and matmul ops for one image (FLOPs / 2). Latency: median of "
        "the timed iterations; speed-up = dense median / pruned median.</p></section>",
    ]
    parts += _pruning_section(plan)
    from cosep_deploy.bench.latency_report import latency_html_section  # a latency-targeted prune (else none)

    parts += latency_html_section(plan, table=_table, figure=_figure)
    parts += _plots_section(plan, bench, points)
    if layers is not None:
        parts += _layers_section(layers)
    parts += _environment_section(bench, plan, summary)
    parts.append("</body></html>")
    out = root / "report.html"
    atomic_write_text(out, "\n".join(parts) + "\n")
    return out
