"""A dense-vs-pruned layer comparison (``bench/layers.json``) as text rows, shared by the CLI, report.md
and report.html so the three show the same figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["KIND_COLUMNS", "LAYER_COLUMNS", "kind_table", "layer_table", "layers_summary", "top_rows"]


def top_rows(rows: Sequence[Mapping[str, Any]], n: int) -> list[dict[str, Any]]:
    """The ``n`` rows with the most dense time (a pruned-only row ranks by its pruned time)."""

    def key(r: Mapping[str, Any]) -> float:
        return float(r["dense_ms"] if r.get("dense_ms") is not None else r.get("pruned_ms") or 0.0)

    return [dict(r) for r in sorted(rows, key=key, reverse=True)[: max(0, n)]]


LAYER_COLUMNS = ("#", "layer", "kind", "dense ms", "pruned ms", "speed-up", "share of dense", "paired by")
KIND_COLUMNS = ("kind", "layers (dense/pruned)", "dense ms", "pruned ms", "speed-up", "share of dense")


def _ms(x: Any) -> str:
    return "-" if x is None else f"{float(x):.4g}"


def _x(x: Any) -> str:
    return "-" if x is None else f"{float(x):.2f}x"


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):.1f}%"


def layer_table(report: Mapping[str, Any], top: int) -> list[list[str]]:
    """Rows (as text, see ``LAYER_COLUMNS``) of the ``top`` layers by dense time, for the CLI and the reports."""
    return [
        [
            str(i),
            str(r["name"]),
            str(r["kind"]),
            _ms(r["dense_ms"]),
            _ms(r["pruned_ms"]),
            _x(r["speedup"]),
            _pct(r["dense_share"]),
            str(r["matched_by"]),
        ]
        for i, r in enumerate(top_rows(report["rows"], top), 1)
    ]


def kind_table(report: Mapping[str, Any]) -> list[list[str]]:
    """Rows (as text, see ``KIND_COLUMNS``) of the per-kind summary: Conv vs depthwise Conv vs Gemm vs ..."""
    return [
        [
            str(k["kind"]),
            f"{k['dense_layers']}/{k['pruned_layers']}",
            _ms(k["dense_ms"]),
            _ms(k["pruned_ms"]),
            _x(k["speedup"]),
            _pct(k["dense_share"]),
        ]
        for k in report["by_kind"]
    ]


def layers_summary(report: Mapping[str, Any]) -> str:
    """One paragraph: how the profile was taken, the totals, and how many layers paired."""
    s, t, un = report.get("settings") or {}, report["totals"], report["unmatched"]
    parts = [f"{k} {s[k]}" for k in ("batch", "iterations", "threads") if s.get(k) is not None]
    how = ", ".join(parts)
    text = (
        f"{s.get('backend', report.get('source', '?'))} profile ({how or 'settings not recorded'}); times are "
        f"{report.get('statistic', 'mean')}s per iteration. Sum of layer times: dense {_ms(t['dense_ms'])} ms, "
        f"pruned {_ms(t['pruned_ms'])} ms ({_x(t['speedup'])})."
    )
    if t.get("dense_run_ms") is not None and t.get("pruned_run_ms") is not None:
        text += (
            f" Whole runs under the profiler (median): dense {_ms(t['dense_run_ms'])} ms, "
            f"pruned {_ms(t['pruned_run_ms'])} ms (the rest is the runtime's own work between layers)."
        )
    text += (
        f" {t['matched_layers']} layers paired; {len(un['dense'])} only in dense ({_ms(t['unmatched_dense_ms'])} ms), "
        f"{len(un['pruned'])} only in pruned ({_ms(t['unmatched_pruned_ms'])} ms)."
    )
    return text
