"""The report's section on a latency-targeted prune (``prune --target-speedup`` / ``--latency-budget-ms``).

Read from the plan alone (``config["latency"]``): per closed-loop round the requested, predicted and
measured speed-up (or latency budget and measured time) with the measurement's confidence interval and
the correction the round was allocated with; and a plot of every layer's predicted time (the latency
table's, corrected by the earlier rounds' measurements) against its time measured in the whole pruned
model, one colour per round: round 1 shows the raw table's error, later rounds what the per-layer
correction left. Plans without a latency request get no section.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "ROUND_COLUMNS",
    "latency_html_section",
    "latency_md_section",
    "layer_errors",
    "plot_predicted_vs_measured",
    "round_rows",
]

ROUND_COLUMNS = (
    "round",
    "requested",
    "predicted",
    "measured",
    "95% CI",
    "residual ms",
    "layers corrected",
    "median |layer error|",
    "chosen",
)


def _latency(plan: Mapping[str, Any]) -> Mapping[str, Any] | None:
    lat = (plan.get("config") or {}).get("latency")
    return lat if isinstance(lat, Mapping) and lat.get("rounds") else None


def _x(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}x"


def layer_errors(rnd: Mapping[str, Any]) -> list[float]:
    """Relative error ``predicted / measured - 1`` of every layer the round measured."""
    out = []
    for row in (rnd.get("layers") or {}).values():
        m, p = row.get("measured_ms"), row.get("predicted_ms")
        if m is not None and p is not None and m > 0:
            out.append(float(p) / float(m) - 1.0)
    return out


def _median_abs(values: Sequence[float]) -> str:
    if not values:
        return "-"
    s = sorted(abs(v) for v in values)
    mid = len(s) // 2
    med = s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
    return f"{100 * med:.1f}%"


def round_rows(latency: Mapping[str, Any]) -> list[list[str]]:
    """One row per round (see :data:`ROUND_COLUMNS`). A latency budget shows as ms instead of a speed-up."""
    rows = []
    for i, r in enumerate(latency["rounds"], start=1):
        m = r.get("measured") or {}
        corr = r.get("correction") or {}
        if r.get("requested_speedup") is not None:
            requested, predicted, measured = (
                _x(r["requested_speedup"]),
                _x(r["predicted_speedup"]),
                _x(m.get("speedup")),
            )
            ci = f"{m['ci_low']:.3f}-{m['ci_high']:.3f}" if m else "-"
        else:
            requested, predicted = f"{r['budget_ms']:.3f} ms", f"{r['predicted_ms']:.3f} ms"
            measured = f"{m['pruned_ms']:.3f} ms" if m else "-"
            ci = f"speed-up {m['ci_low']:.3f}-{m['ci_high']:.3f}" if m else "-"
        rows.append(
            [
                str(i),
                requested,
                predicted,
                measured if m else "not measured",
                ci,
                "-" if corr.get("residual_ms") is None else f"{corr['residual_ms']:.3f}",
                str(corr.get("layers", 0)),
                _median_abs(layer_errors(r)),
                "yes" if i == latency.get("chosen_round") else "",
            ]
        )
    return rows


def _intro(latency: Mapping[str, Any]) -> str:
    req = latency.get("request") or {}
    what = f"a {req['speedup']}x speed-up" if req.get("speedup") is not None else f"a {req.get('budget_ms')} ms budget"
    table = latency.get("table") or {}
    key = table.get("key") or {}
    return (
        f"Pruned to {what} on target {req.get('target')} (batch {req.get('batch')}, {req.get('threads')} threads), "
        f"latency table from {table.get('source', '?')} ({key.get('backend', '?')} {key.get('runtime_version', '')}). "
        "Each round allocates the kept channels on the table corrected by the earlier rounds (per layer: measured "
        "over table time; globally: a residual for the time no layer explains), then measures the pruned model "
        "against the dense one (interleaved runs; speed-up of medians with its bootstrap 95% CI) and profiles it "
        "per layer. The round closest to the request is kept."
    )


def plot_predicted_vs_measured(latency: Mapping[str, Any]) -> bytes:
    """PNG: per-layer predicted time against measured time in the pruned model, per round (log-log)."""
    from cosep_deploy.bench.plots import _figure, _message, _png

    rounds = [(i, r) for i, r in enumerate(latency.get("rounds") or [], start=1) if layer_errors(r)]
    with _figure(6.4, 5.2) as fig:
        if not rounds:
            _message(fig, "no per-layer measurements: the closed loop did not run on this machine")
            return _png(fig)
        ax = fig.add_subplot(1, 1, 1)
        lo, hi = math.inf, 0.0
        for i, r in rounds:
            pts = [
                (float(v["predicted_ms"]), float(v["measured_ms"]))
                for v in r["layers"].values()
                if v.get("measured_ms") and v.get("predicted_ms")
            ]
            xs, ys = [p for p, _ in pts], [m for _, m in pts]
            lo, hi = min(lo, *xs, *ys), max(hi, *xs, *ys)
            label = f"round {i} (median |error| {_median_abs(layer_errors(r))})"
            ax.scatter(xs, ys, s=14, alpha=0.75, label=label)
        ax.plot([lo, hi], [lo, hi], color="#555555", linestyle="--", linewidth=1, label="predicted = measured")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("predicted layer time (ms): table x per-layer correction")
        ax.set_ylabel("measured layer time in the pruned model (ms)")
        ax.set_title("Per-layer latency: predicted vs measured")
        ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        return _png(fig)


def latency_md_section(plan: Mapping[str, Any]) -> list[str]:
    """Markdown lines of the section (none for a plan without a latency request)."""
    latency = _latency(plan)
    if latency is None:
        return []
    lines = ["## Latency target: requested vs measured", "", _intro(latency), ""]
    lines += ["| " + " | ".join(ROUND_COLUMNS) + " |", "|" + "---|" * len(ROUND_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in round_rows(latency)]
    return lines


def latency_html_section(
    plan: Mapping[str, Any],
    *,
    table: Callable[[Sequence[str], list[list[str]]], str],
    figure: Callable[[str, bytes, str, str], str],
) -> list[str]:
    """HTML parts of the section, built with the report's own ``table`` and ``figure`` helpers."""
    import html

    latency = _latency(plan)
    if latency is None:
        return []
    return [
        '<section id="latency-target"><h2>Latency target: requested vs measured</h2>',
        f"<p>{html.escape(_intro(latency))}</p>",
        table(ROUND_COLUMNS, round_rows(latency)),
        figure(
            "plot-latency-layers",
            plot_predicted_vs_measured(latency),
            "per-layer latency, predicted vs measured, per closed-loop round",
            "Every layer's predicted time (the latency table's time at the round's widths, times the layer's "
            "correction from the earlier rounds) against its time in the whole pruned model (ONNX Runtime "
            "profiler), one colour per round; the dashed line is a perfect prediction.",
        ),
        "</section>",
    ]
