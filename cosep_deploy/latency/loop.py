"""The closed loop: allocate counts from the table, prune, export, measure the real speed-up, correct, repeat.

Two corrections, both refitted after every measured round:

- **Per layer.** The pruned model is profiled whole (ONNX Runtime's profiler, :mod:`.profile_ort`) and each
  layer's measured time over its table time at the widths it was measured at becomes that layer's factor
  (:class:`LayerCorrection`): the table, measured on one-layer graphs, misses what the whole model does
  to a layer (fused additions, cache effects, another kernel at the same shape). The corrected cost of a
  layer is its factor times its table time at any widths; a layer the profile did not map keeps its
  previous factor (1 at first).
- **Global residual.** The whole model's time is modelled as ``T = a + b S`` over the corrected layer sum
  ``S`` (initially ``a = 0``, ``b = dense time / S at dense widths``): ``a`` is the time no layer explains
  (pooling, unfused additions, layout changes, the profiler's own overhead with the opposite sign). The
  line is refitted through the dense point and every round's measured pruned/dense time ratio (each ratio
  from one interleaved run, so load that differs between rounds cancels), with every round's ``S``
  recomputed under the current per-layer factors.

Then the counts are allocated again. At most ``rounds`` rounds; the round closest to the request is kept,
and every round's requested, predicted and measured speed-up, the correction it was allocated with and its
per-layer table/predicted/measured times go into the plan.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cosep_deploy.errors import PruneError
from cosep_deploy.latency.allocate import Allocation, CostTerm, GroupCurve, allocate_counts, total_cost

__all__ = [
    "Calibration",
    "LayerCorrection",
    "Round",
    "check_reachable",
    "closed_loop",
    "measure_speedup",
]

# A layer's factor is kept within these bounds: a few-microsecond layer's profiled time is mostly noise.
RATIO_BOUNDS = (0.25, 4.0)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Whole-model time in ms from the (corrected) table's layer sum: ``a + b * S``."""

    a: float
    b: float

    def ms(self, s: float) -> float:
        return self.a + self.b * s

    def layer_sum_for(self, ms: float) -> float:
        return (ms - self.a) / self.b

    @staticmethod
    def through_dense(points: Sequence[tuple[float, float]], s_full: float, dense_ms: float) -> Calibration:
        """The line through the dense model (``S = s_full``, time ``dense_ms``) that best fits the measured
        ``(S, pruned time / dense time)`` points (least squares on the slope). Relative times are taken from
        one interleaved run each, so load that changes between rounds cancels out. Proportional
        (``a = 0``) when the points cannot fix a positive slope."""
        x = np.array([s_full - p[0] for p in points])
        y = np.array([1.0 - p[1] for p in points])
        slope = float(x @ y / (x @ x)) if len(points) and float(x @ x) > 0 else 0.0
        if slope <= 0:
            slope = 1.0 / s_full
        return Calibration(dense_ms * (1.0 - slope * s_full), dense_ms * slope)


@dataclasses.dataclass(frozen=True)
class LayerCorrection:
    """Per-layer factors on the table's times: measured in the whole model over the table's time, at the
    widths of the last round that measured the layer. A layer without a factor keeps its table time."""

    ratios: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def apply(self, terms: Sequence[CostTerm]) -> list[CostTerm]:
        """The cost terms with every layer's time multiplied by its factor."""
        out = []
        for t in terms:
            r = self.ratios.get(t.name)
            if r is None:
                out.append(t)
                continue

            def fn(counts: Mapping[str, int], t: CostTerm = t, r: float = r) -> float:
                return r * t.fn(counts)

            out.append(CostTerm(t.name, t.groups, fn))
        return out

    def refit(
        self, terms: Sequence[CostTerm], counts: Mapping[str, int], layer_ms: Mapping[str, float]
    ) -> LayerCorrection:
        """New factors from one round's measured layer times (at ``counts``); unmeasured layers keep theirs."""
        lo, hi = RATIO_BOUNDS
        ratios = dict(self.ratios)
        for t in terms:
            measured, table = layer_ms.get(t.name), t.fn(counts)
            if measured is not None and table > 0:
                ratios[t.name] = min(hi, max(lo, float(measured) / table))
        return LayerCorrection(ratios)

    def summary(self) -> dict[str, Any]:
        vals = list(self.ratios.values())
        return {
            "layers": len(vals),
            "median_ratio": round(statistics.median(vals), 4) if vals else None,
            "min_ratio": round(min(vals), 4) if vals else None,
            "max_ratio": round(max(vals), 4) if vals else None,
        }


@dataclasses.dataclass(frozen=True)
class Round:
    """One allocation and its measurement; ``layers``: per layer, the table's time, the corrected time the
    allocation used and the time measured in the whole pruned model (ms, None where not measured)."""

    counts: dict[str, int]
    predicted_ms: float
    predicted_speedup: float
    measured: dict[str, Any] | None  # harness result: speedup, ci_low, ci_high, dense_ms, pruned_ms
    correction: dict[str, Any] = dataclasses.field(default_factory=dict)
    layers: dict[str, dict[str, float | None]] = dataclasses.field(default_factory=dict)

    def to_json(self, requested: float | None, budget_ms: float | None) -> dict[str, Any]:
        return {
            "requested_speedup": requested,
            "budget_ms": budget_ms,
            "predicted_speedup": round(self.predicted_speedup, 4),
            "predicted_ms": round(self.predicted_ms, 4),
            "measured_speedup": None if self.measured is None else self.measured["speedup"],
            "measured": self.measured,
            "correction": self.correction,
            "layers": self.layers,
            "counts": self.counts,
        }


def measure_speedup(
    dense: Any,
    pruned: Any,
    sample: Any,
    *,
    batch: int,
    threads: int,
    iterations: int,
    min_seconds: float,
    profile: Callable[[Path], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Export both models and time them with the interleaved harness (ONNX Runtime, CPU). ``profile``,
    given the pruned ONNX file, adds its per-layer times (``layer_ms``) and what did not map (``profile``)."""
    from cosep_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner
    from cosep_deploy.bench import BenchConfig, bench_runners
    from cosep_deploy.export import onnx_from_model

    with tempfile.TemporaryDirectory(prefix="cosep-latency-loop-") as tmp:
        paths = {n: Path(tmp) / f"{n}.onnx" for n in ("dense", "pruned")}
        onnx_from_model(dense, sample, paths["dense"])
        onnx_from_model(pruned, sample, paths["pruned"])
        runners = {n: OnnxRuntimeRunner(p, threads=threads, name=n) for n, p in paths.items()}
        cfg = BenchConfig(batch_sizes=(batch,), iterations=iterations, min_seconds=min_seconds, warmup=5)
        with runners["dense"], runners["pruned"]:
            report = bench_runners(runners, list(sample.shape[1:]), cfg, baseline="dense")
        layers = dict(profile(paths["pruned"])) if profile is not None else None
    s = report.speedups["pruned"][str(batch)]
    out: dict[str, Any] = {
        "speedup": float(s["speedup"]),
        "ci_low": float(s["ci_low"]),
        "ci_high": float(s["ci_high"]),
        "dense_ms": float(report.engines["dense"]["results"][str(batch)]["median_ms"]),
        "pruned_ms": float(report.engines["pruned"]["results"][str(batch)]["median_ms"]),
    }
    if layers is not None:
        out["layer_ms"] = layers.pop("layer_ms")
        out["profile"] = layers
    return out


@dataclasses.dataclass
class _LoopState:
    """What the loop has learnt so far: the correction and every measured ``(counts, pruned / dense)``."""

    terms: Sequence[CostTerm]
    full: dict[str, int]
    minimum: dict[str, int]
    cal: Calibration
    correction: LayerCorrection = dataclasses.field(default_factory=LayerCorrection)
    points: list[tuple[dict[str, int], float]] = dataclasses.field(default_factory=list)

    def corrected(self) -> list[CostTerm]:
        return self.correction.apply(self.terms)

    def learn(
        self, counts: Mapping[str, int], measured: Mapping[str, Any], layer_ms: Mapping[str, float] | None
    ) -> None:
        """Refit the per-layer factors (when the round has layer times), then the line through dense."""
        self.points.append((dict(counts), 1.0 / float(measured["speedup"])))
        if layer_ms:
            self.correction = self.correction.refit(self.terms, counts, layer_ms)
        now = self.corrected()
        pts = [(total_cost(now, c), r) for c, r in self.points]
        self.cal = Calibration.through_dense(pts, total_cost(now, self.full), float(measured["dense_ms"]))

    def describe(self) -> dict[str, Any]:
        return {"residual_ms": round(self.cal.a, 5), "scale": round(self.cal.b, 5), **self.correction.summary()}


def _layer_rows(
    terms: Sequence[CostTerm], now: Sequence[CostTerm], counts: Mapping[str, int], layer_ms: Mapping[str, float] | None
) -> dict[str, dict[str, float | None]]:
    got = layer_ms or {}
    return {
        t.name: {
            "table_ms": round(t.fn(counts), 5),
            "predicted_ms": round(c.fn(counts), 5),
            "measured_ms": None if got.get(t.name) is None else round(float(got[t.name]), 5),
        }
        for t, c in zip(terms, now, strict=True)
    }


def closed_loop(
    curves: Sequence[GroupCurve],
    terms: Sequence[CostTerm],
    *,
    dense_ms: float,
    speedup: float | None,
    budget_ms: float | None,
    rounds: int,
    tolerance: float,
    measure: Callable[[Mapping[str, int]], dict[str, Any]] | None,
) -> tuple[Round, list[Round]]:
    """Allocate, measure with ``measure(counts)`` (None: open loop, one round), correct, repeat.

    ``measure`` returns the harness result (``speedup``, ``dense_ms``, ...), optionally with ``layer_ms``
    (measured time per layer name in the pruned model) for the per-layer correction."""
    full = {c.root: c.counts[-1] for c in curves}
    minimum = {c.root: c.counts[0] for c in curves}
    state = _LoopState(terms, full, minimum, Calibration(0.0, dense_ms / total_cost(terms, full)))
    history: list[Round] = []
    for _ in range(rounds if measure is not None else 1):
        now = state.corrected()
        s_full, s_min = total_cost(now, full), total_cost(now, minimum)
        dense_now = state.cal.ms(s_full)
        want_ms = dense_now / speedup if speedup is not None else float(budget_ms or 0.0)
        if state.cal.ms(s_min) > want_ms * (1 + 1e-9):
            if history:  # the corrected prediction says the request is out of reach: keep what was measured
                break
            check_reachable(state.cal, s_full, s_min, speedup=speedup, budget_ms=budget_ms)
        alloc: Allocation = allocate_counts(curves, now, state.cal.layer_sum_for(want_ms))
        pred_ms = state.cal.ms(alloc.cost)
        measured = measure(alloc.counts) if measure is not None else None
        layer_ms = measured.pop("layer_ms", None) if measured is not None else None
        rows = _layer_rows(terms, now, alloc.counts, layer_ms)
        history.append(Round(alloc.counts, pred_ms, dense_now / pred_ms, measured, state.describe(), rows))
        if measured is None or abs(_achieved(measured, speedup, budget_ms) - 1) <= tolerance:
            break
        state.learn(alloc.counts, measured, layer_ms)
    best = min(history, key=lambda r: abs(_achieved(r.measured, speedup, budget_ms) - 1) if r.measured else 0.0)
    return best, history


def check_reachable(
    cal: Calibration, s_full: float, s_min: float, *, speedup: float | None, budget_ms: float | None
) -> None:
    """Refuse a request that even every group at its minimum count is predicted to miss."""
    dense_now, best_ms = cal.ms(s_full), cal.ms(s_min)
    want_ms = dense_now / speedup if speedup is not None else float(budget_ms or 0.0)
    if best_ms > want_ms * (1 + 1e-9):
        what = f"target speed-up {speedup}x" if speedup is not None else f"latency budget {budget_ms} ms"
        raise PruneError(
            f"{what} is beyond reach: every group pruned to its minimum predicts {dense_now / best_ms:.2f}x at most "
            f"({best_ms:.2f} ms of {dense_now:.2f} ms dense); lower the request or the minimum keep ratio"
        )


def _achieved(measured: Mapping[str, Any] | None, speedup: float | None, budget_ms: float | None) -> float:
    """Measured over requested (1.0 = on target): speed-up ratio, or budget over measured time."""
    if measured is None:
        return 1.0
    if speedup is not None:
        return float(measured["speedup"]) / speedup
    return float(budget_ms or 0.0) / float(measured["pruned_ms"])
