"""Report plots as PNG bytes (matplotlib's Agg canvas on plain ``Figure`` objects, no pyplot state).

Every function takes the plain JSON of an artifact (``plan.json``, ``bench.json``) or a list of points, so a
report can be rebuilt from a run directory alone. Output is deterministic: the figure size follows only the
data, the dpi and style are fixed (matplotlib's "default" style, whatever the user's matplotlibrc says), and
the PNG carries no software/timestamp metadata, so the same input gives the same bytes.
"""

from __future__ import annotations

import contextlib
import io
import math
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_accuracy_vs_macs",
    "plot_kept_channels",
    "plot_latency_distributions",
    "plot_layer_times",
    "plot_mss_curves",
    "plot_speedup",
]

DPI = 100
_DENSE, _PRUNED, _KNEE, _FALLBACK, _REF = "#9aa5b1", "#2f7ed8", "#2ca02c", "#d9822b", "#555555"
_STAGE_MARKERS = {"dense": "s", "pruned": "o", "finetuned": "D"}


@contextlib.contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    """A figure on its own Agg canvas, drawn under the fixed default style and cleared afterwards."""
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.style.context("default"):
        fig = Figure(figsize=(width, height), dpi=DPI)
        FigureCanvasAgg(fig)
        try:
            yield fig
        finally:
            fig.clear()


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _message(fig: Figure, text: str) -> None:
    """A figure that says why there is nothing to plot (a report keeps its layout either way)."""
    ax = fig.add_subplot(1, 1, 1)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=11, wrap=True)
    ax.set_axis_off()


def _batches(results: Mapping[str, Any]) -> list[str]:
    return sorted(results, key=lambda b: int(b))


def plot_kept_channels(plan_json: Mapping[str, Any]) -> bytes:
    """Dense width and kept channels of every group, in network order (one horizontal bar pair per group)."""
    groups = list(plan_json.get("groups") or [])
    with _figure(8.0, max(2.5, 0.32 * len(groups) + 1.4)) as fig:
        if not groups:
            _message(fig, "no prunable channel groups in this plan")
            return _png(fig)
        ax = fig.add_subplot(1, 1, 1)
        ys = list(range(len(groups)))
        ax.barh(ys, [g["size"] for g in groups], height=0.75, color=_DENSE, label="dense")
        ax.barh(ys, [g["n_kept"] for g in groups], height=0.45, color=_PRUNED, label="pruned (kept)")
        for y, g in zip(ys, groups, strict=True):
            ax.text(g["size"], y, f" {g['n_kept']}/{g['size']}", va="center", fontsize=7)
        ax.set_yticks(ys, [str(g["root"]) for g in groups], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.15 * max(g["size"] for g in groups))
        ax.set_xlabel("output channels")
        before, after = plan_json.get("cost_before", {}), plan_json.get("cost_after", {})
        ratio = (
            f", MACs {before['macs'] / after['macs']:.2f}x fewer" if before.get("macs") and after.get("macs") else ""
        )
        ax.set_title(f"Channels kept per group ({plan_json.get('method', '?')}{ratio})", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        return _png(fig)


def _shown_groups(groups: Sequence[Mapping[str, Any]], max_groups: int) -> list[Mapping[str, Any]]:
    """At most ``max_groups`` groups spread evenly over the network, so every stage is represented."""
    if len(groups) <= max_groups:
        return list(groups)
    picks = sorted({round(i * (len(groups) - 1) / (max_groups - 1)) for i in range(max_groups)})
    return [groups[i] for i in picks]


def _mss_panel(ax: Axes, g: Mapping[str, Any]) -> None:
    curve = sorted((float(k), float(y)) for k, y in g.get("curve") or [])
    fallback = bool(g.get("fallback"))
    color = _FALLBACK if fallback else _KNEE
    tag = "fallback, " if fallback else ""
    ax.set_title(f"{g['root']}\n{tag}k={g['k']}, kept {g['n_kept']}/{g['size']}", fontsize=7, color=color)
    if not curve:
        note = g.get("note") or f"no MSS curve (count rule {g.get('count_rule', '?')})"
        ax.text(0.5, 0.5, textwrap.fill(str(note), 28), ha="center", va="center", fontsize=6, transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    ks, ys = [k for k, _ in curve], [y for _, y in curve]
    ax.plot(ks, ys, color=_PRUNED, lw=1, marker=".", ms=2)
    ax.axvline(g["k"], color=color, ls="--", lw=1)
    at_knee = [y for k, y in curve if k == g["k"]]
    if at_knee:
        ax.plot([g["k"]], at_knee, marker="*", ms=9, color=color, ls="none")
    if g["n_kept"] != g["k"]:  # rounding (round_to) moved the kept count away from the knee
        ax.axvline(g["n_kept"], color=_REF, ls=":", lw=1)
    ax.tick_params(labelsize=6)


def plot_mss_curves(plan_json: Mapping[str, Any], max_groups: int = 12) -> bytes:
    """Small multiples of each group's Mean Simplified Silhouette (MSS) over the number of clusters k.

    The knee of the curve (Kneedle) is CoSeP's channel count: a dashed line and a star; a dotted line marks
    the kept count when rounding moved it. Orange panels are fallbacks (no knee found, or too few channels).
    """
    groups = list(plan_json.get("groups") or [])
    if not any(g.get("curve") for g in groups):
        with _figure(6.0, 2.5) as fig:
            method = plan_json.get("method", "?")
            _message(fig, f"no MSS curves: method {method!r} sets channel counts without clustering")
            return _png(fig)
    shown = _shown_groups(groups, max(1, max_groups))
    cols = min(4, len(shown))
    rows = math.ceil(len(shown) / cols)
    with _figure(2.9 * cols + 0.4, 2.2 * rows + 0.7) as fig:
        for i, g in enumerate(shown):
            ax = fig.add_subplot(rows, cols, i + 1)
            _mss_panel(ax, g)
            if i % cols == 0:
                ax.set_ylabel("MSS", fontsize=7)
            if i >= len(shown) - cols:
                ax.set_xlabel("k (clusters)", fontsize=7)
        extra = f" ({len(shown)} of {len(groups)} groups, evenly spaced)" if len(shown) < len(groups) else ""
        fig.suptitle(
            f"MSS curves and knees{extra}\nstar and dashed line: knee k; dotted line: kept count after rounding",
            fontsize=9,
        )
        fig.tight_layout()
        return _png(fig)


def _clip_outliers(ax: Axes, positions: Sequence[float], series: Sequence[Sequence[float]]) -> None:
    """Keep the y-axis on the bulk of the timings: points far above it (an OS hiccup) are drawn as
    triangles on the top edge with their count, rather than squashing every box into a line."""
    import numpy as np

    tops = []
    for times in series:
        q1, q3 = np.percentile(times, [25, 75])
        tops.append(min(max(times), q3 + 3 * (q3 - q1)))
    top = float(max(tops))
    lows = float(min(min(t) for t in series))
    if not any(max(t) > top for t in series) or not math.isfinite(top):
        return
    margin = 0.08 * max(top - lows, 1e-9)
    ax.set_ylim(lows - margin, top + margin)
    for p, times in zip(positions, series, strict=True):
        n_above = sum(1 for t in times if t > top + margin)
        if n_above:
            ax.plot([p], [top + 0.6 * margin], marker="^", ms=6, color=_FALLBACK, ls="none")
            ax.annotate(
                f"{n_above} above",
                (p, top + 0.6 * margin),
                xytext=(6, -3),
                textcoords="offset points",
                fontsize=6,
                color=_FALLBACK,
            )


def plot_latency_distributions(bench_json: Mapping[str, Any]) -> bytes:
    """Per-iteration latency of every engine, one panel per batch size: a box plot plus every timing."""
    engines: Mapping[str, Any] = bench_json.get("engines") or {}
    names = list(engines)
    if not names:
        with _figure(6.0, 2.5) as fig:
            _message(fig, "no engines in this benchmark")
            return _png(fig)
    base = bench_json.get("baseline", names[0])
    batches = _batches(engines[names[0]]["results"])
    cols = min(4, len(batches))
    rows = math.ceil(len(batches) / cols)
    with _figure(3.0 * cols + 0.6, 3.0 * rows + 0.6) as fig:
        for i, b in enumerate(batches):
            ax = fig.add_subplot(rows, cols, i + 1)
            series = []
            for n in names:
                res = engines[n]["results"].get(b, {})
                series.append([float(t) for t in res.get("times_ms") or [res.get("median_ms", math.nan)]])
            pos = list(range(1, len(names) + 1))
            ax.boxplot(series, positions=pos, widths=0.5, showfliers=False)
            for p, n, times in zip(pos, names, series, strict=True):
                spread = [p + 0.18 * (j / max(1, len(times) - 1) - 0.5) for j in range(len(times))]
                ax.plot(spread, times, ls="none", marker="o", ms=2.5, alpha=0.6, color=_DENSE if n == base else _PRUNED)
                med = engines[n]["results"].get(b, {}).get("median_ms")
                if med is not None:
                    ax.annotate(f"{med:.3g}", (p + 0.28, med), fontsize=6, va="center")
            _clip_outliers(ax, pos, series)
            ax.set_xticks(pos, names, fontsize=8)
            ax.set_title(f"batch {b}", fontsize=9)
            ax.tick_params(axis="y", labelsize=7)
            if i % cols == 0:
                ax.set_ylabel("latency per batch (ms)", fontsize=8)
        s = bench_json.get("settings") or {}
        iters = (bench_json.get("config") or {}).get("iterations", "?")
        fig.suptitle(
            f"Latency per iteration, {s.get('backend', '?')} {s.get('precision', '')} ({iters} timed, interleaved)",
            fontsize=10,
        )
        fig.tight_layout()
        return _png(fig)


def plot_speedup(bench_json: Mapping[str, Any]) -> bytes:
    """Median speed-up over the baseline per batch size with its bootstrap confidence interval.

    The dashed line is the MACs ratio: the speed-up that counting arithmetic alone would predict.
    """
    speedups: Mapping[str, Any] = bench_json.get("speedups") or {}
    with _figure(6.0, 3.6) as fig:
        if not speedups:
            _message(fig, "no speed-ups: only one engine was benchmarked")
            return _png(fig)
        ax = fig.add_subplot(1, 1, 1)
        batches = sorted({b for per in speedups.values() for b in per}, key=int)
        xs = {b: i for i, b in enumerate(batches)}
        ratios: dict[str, float] = {}
        level = 0.95
        for j, (name, per_batch) in enumerate(speedups.items()):
            shift = 0.08 * (j - (len(speedups) - 1) / 2)
            mine = [b for b in batches if b in per_batch]
            s = [float(per_batch[b]["speedup"]) for b in mine]
            lo = [max(0.0, v - float(per_batch[b]["ci_low"])) for v, b in zip(s, mine, strict=True)]
            hi = [max(0.0, float(per_batch[b]["ci_high"]) - v) for v, b in zip(s, mine, strict=True)]
            x = [xs[b] + shift for b in mine]
            ax.errorbar(x, s, yerr=[lo, hi], marker="o", capsize=5, lw=1.2, label=f"{name} (median speed-up)")
            for xi, v in zip(x, s, strict=True):
                ax.annotate(f"{v:.2f}x", (xi, v), xytext=(7, 0), textcoords="offset points", fontsize=7, va="center")
            level = float(next((per_batch[b].get("level", level) for b in mine), level))
            ratio = next((per_batch[b].get("macs_ratio") for b in mine if per_batch[b].get("macs_ratio")), None)
            if ratio:
                ratios[name] = float(ratio)
        for name, ratio in ratios.items():
            who = f"{name} " if len(ratios) > 1 else ""
            ax.axhline(ratio, ls="--", color=_REF, lw=1, label=f"{who}MACs ratio {ratio:.2f}x")
        ax.axhline(1.0, color="#222222", lw=0.8, label="no change")
        ax.set_xticks(list(xs.values()), batches)
        ax.set_xlim(-0.5, len(batches) - 0.5)
        ax.set_xlabel("batch size")
        ax.set_ylabel(f"speed-up vs {bench_json.get('baseline', 'baseline')}")
        ax.set_title(f"Speed-up per batch size ({100 * level:.0f}% bootstrap CI)", fontsize=10)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        return _png(fig)


def plot_accuracy_vs_macs(points: Sequence[Mapping[str, Any]]) -> bytes:
    """Top-1 accuracy over MACs for the dense model, CoSeP and any baselines (each at each stage).

    ``points``: ``{"method", "macs", "top1" (fraction or None), "stage"}``; points of one method are joined
    in the order given, so a pruned -> fine-tuned pair reads as the recovery from fine-tuning.
    """
    valid = [p for p in points if p.get("top1") is not None and p.get("macs")]
    with _figure(6.5, 4.0) as fig:
        if not valid:
            _message(fig, "no accuracy measurements to plot")
            return _png(fig)
        ax = fig.add_subplot(1, 1, 1)
        methods = list(dict.fromkeys(str(p["method"]) for p in valid))
        palette = ["#2f7ed8", "#d9534f", "#8e44ad", "#d9822b", "#16a085", "#7f8c8d", "#c0392b", "#2c3e50"]
        others = iter(palette[1:] * (1 + len(methods) // len(palette)))
        colors = {m: _DENSE if m == "dense" else (palette[0] if m == "cosep" else next(others)) for m in methods}
        for m in methods:
            mine = [p for p in valid if str(p["method"]) == m]
            xs, ys = [float(p["macs"]) / 1e6 for p in mine], [100 * float(p["top1"]) for p in mine]
            if len(mine) > 1:
                ax.plot(xs, ys, color=colors[m], lw=1, ls="--", alpha=0.7)
            for p, x, y in zip(mine, xs, ys, strict=True):
                stage = str(p.get("stage", ""))
                ax.plot(
                    [x],
                    [y],
                    ls="none",
                    marker=_STAGE_MARKERS.get(stage, "^"),
                    ms=7,
                    color=colors[m],
                    label=f"{m} ({stage})" if stage and stage != m else m,
                )
        ax.set_xlim(left=0)
        ax.set_xlabel("MACs per image (M)")
        ax.set_ylabel("top-1 (%)")
        ax.set_title("Accuracy vs MACs", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        return _png(fig)


def _short(name: str, width: int = 46) -> str:
    """A layer name cut in the middle to ``width`` characters (TensorRT's fused names run long)."""
    if len(name) <= width:
        return name
    keep = width - 3
    return f"{name[: keep // 2]}...{name[-(keep - keep // 2) :]}"


def plot_layer_times(layers_json: Mapping[str, Any], top: int = 15) -> bytes:
    """Mean time per iteration of the ``top`` layers with the most dense time: dense and pruned bars side by
    side, the per-layer speed-up at the right; a layer only one engine has gets a note instead."""
    from cosep_deploy.bench.layer_tables import top_rows

    rows = top_rows(layers_json.get("rows") or [], top)
    with _figure(8.5, max(2.5, 0.42 * len(rows) + 1.5)) as fig:
        if not rows:
            _message(fig, "no layers in this profile")
            return _png(fig)
        ax = fig.add_subplot(1, 1, 1)
        ys = list(range(len(rows)))
        dense = [float(r["dense_ms"] or 0.0) for r in rows]
        pruned = [float(r["pruned_ms"] or 0.0) for r in rows]
        ax.barh([y - 0.2 for y in ys], dense, height=0.4, color=_DENSE, label="dense")
        ax.barh([y + 0.2 for y in ys], pruned, height=0.4, color=_PRUNED, label="pruned")
        for y, r, d, p in zip(ys, rows, dense, pruned, strict=True):
            if r.get("speedup") is not None:
                note = f" {float(r['speedup']):.2f}x"
            else:
                note = " only in dense" if r.get("pruned_ms") is None else " only in pruned"
            ax.text(max(d, p), y, note, va="center", fontsize=7)
        ax.set_yticks(ys, [f"{_short(str(r['name']))}\n[{r['kind']}]" for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.18 * max(max(dense), max(pruned), 1e-9))
        ax.set_xlabel(f"{layers_json.get('statistic', 'mean')} time per iteration (ms)")
        s = layers_json.get("settings") or {}
        where = str(s.get("backend", layers_json.get("source", "?")))
        where += f", batch {s['batch']}" if "batch" in s else ""
        n = len(layers_json.get("rows") or [])
        ax.set_title(f"Where time goes: top {len(rows)} of {n} layers by dense time ({where})", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        return _png(fig)
