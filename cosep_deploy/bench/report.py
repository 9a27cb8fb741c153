"""The run report: a one-screen summary table and ``report.md``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cosep_deploy.artifacts import atomic_write_text, read_json

__all__ = ["layers_section", "summary_lines", "write_report"]

TOP_LAYERS = 15


def _pct(x: float | None) -> str:
    return "skipped" if x is None else f"{100 * x:.2f}%"


def summary_lines(summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Rows (metric, dense, pruned, ratio) of the one-screen summary."""
    rows: list[tuple[str, str, str, str]] = []
    tuned = summary.get("pruned_top1")
    rows.append(
        (
            "top-1 (val)",
            _pct(summary["dense_top1"]),
            _pct(tuned if tuned is not None else None),
            f"before fine-tuning {_pct(summary['pruned_top1_before_finetune'])}",
        )
    )
    for prec, acc in (summary.get("onnx_top1") or {}).items():
        rows.append((f"top-1 ONNX {prec} (ORT)", _pct(acc.get("dense")), _pct(acc.get("pruned")), "engine accuracy"))
    m, p = summary["macs"], summary["params"]
    rows.append(
        ("MACs", f"{m['dense'] / 1e6:.2f} M", f"{m['pruned'] / 1e6:.2f} M", f"{m['dense'] / m['pruned']:.2f}x fewer")
    )
    rows.append(
        ("params", f"{p['dense'] / 1e6:.3f} M", f"{p['pruned'] / 1e6:.3f} M", f"{p['dense'] / p['pruned']:.2f}x fewer")
    )
    for b, lat in (summary.get("latency") or {}).items():
        rows.append(
            (
                f"latency b={b} (median)",
                f"{lat['dense_ms']:.3f} ms",
                f"{lat['pruned_ms']:.3f} ms",
                f"{lat['speedup']:.2f}x {'faster' if lat['speedup'] >= 1 else 'SLOWER'} "
                f"[95% CI {lat['ci_low']:.2f}-{lat['ci_high']:.2f}]",
            )
        )
    if not summary.get("latency"):
        rows.append(("latency", "skipped", "skipped", "benchmark did not run"))
    return rows


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _md_code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def layers_section(layers: dict[str, Any], top: int = TOP_LAYERS) -> list[str]:
    """Markdown lines of "Where time goes (per layer)" from ``bench/layers.json``: the top layers by dense time
    side by side, the per-kind summary, and the layers only one engine has."""
    from cosep_deploy.bench.layer_tables import KIND_COLUMNS, LAYER_COLUMNS, kind_table, layer_table, layers_summary

    lines = ["## Where time goes (per layer)", "", layers_summary(layers), ""]
    lines += [_md_row(list(LAYER_COLUMNS)), "|" + "---|" * len(LAYER_COLUMNS)]
    for row in layer_table(layers, top):
        lines.append(_md_row([*row[:1], _md_code(row[1]), *row[2:]]))
    lines += ["", "### By kind of layer", "", _md_row(list(KIND_COLUMNS)), "|" + "---|" * len(KIND_COLUMNS)]
    lines += [_md_row(row) for row in kind_table(layers)]
    for side in ("dense", "pruned"):
        names = layers["unmatched"][side]
        if names:
            shown = ", ".join(_md_code(n) for n in names[:20]) + (", ..." if len(names) > 20 else "")
            lines += ["", f"Only in {side} (no counterpart found): {shown}"]
    return lines


def write_report(run: str | os.PathLike[str], summary: dict[str, Any]) -> Path:
    """Write ``report.md`` (summary, per-group pruning decisions, per-layer times when ``bench/layers.json``
    exists, benchmark settings) into the run."""
    root = Path(run)
    lines = ["# cosep-deploy run report", "", f"Run directory: `{root}`", ""]
    if summary.get("synthetic_data"):
        lines += ["**Synthetic data: accuracy numbers are meaningless; timings only.**", ""]
    lines += ["| metric | dense | pruned | ratio |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in summary_lines(summary)]
    lines += ["", "MACs convention: multiply-accumulates of conv and matmul ops for one image (FLOPs / 2).", ""]
    plan = read_json(root / "pruned" / "plan.json", what="pruning plan")
    lines += [
        "## Pruning decisions per group",
        "",
        f"Method `{plan['method']}`; config: `{plan['config']}`",
        "",
        "| group root | channels | kept | knee k | fallback | grid |",
        "|---|---|---|---|---|---|",
    ]
    for g in plan["groups"]:
        lines.append(f"| `{g['root']}` | {g['size']} | {g['n_kept']} | {g['k']} | {g['fallback']} | {g['grid']} |")
    from cosep_deploy.bench.latency_report import latency_md_section

    latency = latency_md_section(plan)  # a latency-targeted prune's rounds (none otherwise)
    lines += ["", *latency] if latency else []
    layers_file = root / "bench" / "layers.json"
    if layers_file.is_file():
        from cosep_deploy.bench.layers import LayersReport

        lines += ["", *layers_section(LayersReport.load(layers_file).to_json())]
    from cosep_deploy.board.collect import board_report_lines

    lines += ["", *board_report_lines(root)] if (root / "board").is_dir() else []  # results from a Jetson bundle
    if summary.get("bench_settings"):
        lines += ["", "## Benchmark settings", "", "```", str(summary["bench_settings"]), "```"]
    out = root / "report.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out
