"""Report plots as PNG bytes (matplotlib, Agg canvas, no pyplot global state).

Each function takes the plain JSON of an artifact (plan.json, bench.json) so reports can be rebuilt from
a run directory alone. Output is deterministic: fixed size and dpi, no timestamp in the PNG metadata.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

__all__ = ["plot_kept_channels", "plot_latency_distributions", "plot_mss_curves", "plot_speedup"]

_DPI = 100


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def plot_kept_channels(plan: dict[str, Any]) -> bytes:
    """Channels per group before and after pruning (one bar pair per group, in network order)."""
    groups = plan["groups"]
    fig = _figure(max(6.0, 0.35 * len(groups) + 2), 3.6)
    ax = fig.add_subplot(1, 1, 1)
    xs = range(len(groups))
    ax.bar([x - 0.2 for x in xs], [g["size"] for g in groups], width=0.4, label="dense", color="#9aa5b1")
    ax.bar([x + 0.2 for x in xs], [g["n_kept"] for g in groups], width=0.4, label="pruned", color="#2f7ed8")
    ax.set_xticks(list(xs), [g["root"] for g in groups], rotation=70, fontsize=7, ha="right")
    ax.set_ylabel("channels")
    ax.set_title(f"kept channels per group ({plan['method']})")
    ax.legend()
    fig.tight_layout()
    return _png(fig)


def plot_mss_curves(plan: dict[str, Any], max_groups: int = 12) -> bytes:
    """The Mean Simplified Silhouette curve of each group with its knee (fallbacks marked)."""
    groups = [g for g in plan["groups"] if g.get("curve")][:max_groups]
    cols = 4
    rows = max(1, -(-len(groups) // cols))
    fig = _figure(12, 2.6 * rows)
    for i, g in enumerate(groups):
        ax = fig.add_subplot(rows, cols, i + 1)
        ks = [c[0] for c in g["curve"]]
        ax.plot(ks, [c[1] for c in g["curve"]], color="#2f7ed8", lw=1)
        ax.axvline(g["k"], color="#d9534f" if g.get("fallback") else "#2ca02c", ls="--", lw=1)
        ax.set_title(f"{g['root']} (k={g['k']}{', fallback' if g.get('fallback') else ''})", fontsize=7)
        ax.tick_params(labelsize=6)
    if not groups:
        fig.add_subplot(1, 1, 1).text(0.5, 0.5, "no MSS curves (baseline method)", ha="center")
    fig.tight_layout()
    return _png(fig)


def plot_latency_distributions(bench: dict[str, Any]) -> bytes:
    """Per-iteration latency of every engine, one panel per batch size (box plots)."""
    names = list(bench["engines"])
    batches = list(bench["engines"][names[0]]["results"])
    fig = _figure(3.2 * len(batches) + 1, 3.4)
    for i, b in enumerate(batches):
        ax = fig.add_subplot(1, len(batches), i + 1)
        ax.boxplot([bench["engines"][n]["results"][b]["times_ms"] for n in names], tick_labels=names)
        ax.set_title(f"batch {b}")
        ax.set_ylabel("ms")
    fig.tight_layout()
    return _png(fig)


def plot_speedup(bench: dict[str, Any], baseline_macs_ratio: Sequence[float] = ()) -> bytes:
    """Speed-up over the baseline per batch size with its bootstrap interval; the MACs ratio as reference."""
    fig = _figure(5, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    for name, per_batch in bench["speedups"].items():
        batches = list(per_batch)
        s = [per_batch[b]["speedup"] for b in batches]
        err = [
            [v - per_batch[b]["ci_low"] for v, b in zip(s, batches, strict=True)],
            [per_batch[b]["ci_high"] - v for v, b in zip(s, batches, strict=True)],
        ]
        ax.errorbar(batches, s, yerr=err, marker="o", capsize=4, label=f"{name} speed-up")
        ratio = next((per_batch[b].get("macs_ratio") for b in batches if per_batch[b].get("macs_ratio")), None)
        if ratio:
            ax.axhline(ratio, ls="--", color="#999999", label=f"MACs ratio {ratio:.2f}x")
    ax.axhline(1.0, color="#333333", lw=0.8)
    ax.set_xlabel("batch size")
    ax.set_ylabel("speed-up vs " + str(bench["baseline"]))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)
