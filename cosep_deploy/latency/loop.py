"""The closed loop: allocate counts from the table, prune, export, measure the real speed-up, correct, repeat.

The table predicts the sum ``S`` of the layers' times; the whole model's time is modelled as ``T = a + b S``
(initially ``a = 0``, ``b = dense time / S at dense widths``: the time the table does not explain scales
with it). After each measured round the line is refitted through the dense point and every round's
measured pruned/dense time ratio (each ratio from one interleaved run, so load that differs between rounds
cancels), which corrects the table's systematic error (kernel fusion, layout changes, additions and
pooling it does not see), and the counts are allocated again. At most ``rounds`` rounds; the round closest
to the request is kept, and every round's requested, predicted and measured speed-up goes into the plan.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cosep_deploy.errors import PruneError
from cosep_deploy.latency.allocate import Allocation, CostTerm, GroupCurve, allocate_counts, total_cost

__all__ = ["Calibration", "Round", "check_reachable", "closed_loop", "measure_speedup"]


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Whole-model time in ms from the table's layer sum: ``a + b * S``."""

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
class Round:
    counts: dict[str, int]
    predicted_ms: float
    predicted_speedup: float
    measured: dict[str, Any] | None  # harness result: speedup, ci_low, ci_high, dense_ms, pruned_ms

    def to_json(self, requested: float | None, budget_ms: float | None) -> dict[str, Any]:
        return {
            "requested_speedup": requested,
            "budget_ms": budget_ms,
            "predicted_speedup": round(self.predicted_speedup, 4),
            "predicted_ms": round(self.predicted_ms, 4),
            "measured_speedup": None if self.measured is None else self.measured["speedup"],
            "measured": self.measured,
            "counts": self.counts,
        }


def measure_speedup(
    dense: Any, pruned: Any, sample: Any, *, batch: int, threads: int, iterations: int, min_seconds: float
) -> dict[str, Any]:
    """Export both models and time them with the interleaved harness (ONNX Runtime, CPU)."""
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
    s = report.speedups["pruned"][str(batch)]
    return {
        "speedup": float(s["speedup"]),
        "ci_low": float(s["ci_low"]),
        "ci_high": float(s["ci_high"]),
        "dense_ms": float(report.engines["dense"]["results"][str(batch)]["median_ms"]),
        "pruned_ms": float(report.engines["pruned"]["results"][str(batch)]["median_ms"]),
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
    """Allocate, measure with ``measure(counts)`` (None: open loop, one round), correct, repeat."""
    full = {c.root: c.counts[-1] for c in curves}
    minimum = {c.root: c.counts[0] for c in curves}
    s_full, s_min = total_cost(terms, full), total_cost(terms, minimum)
    cal = Calibration(0.0, dense_ms / s_full)
    points: list[tuple[float, float]] = []  # (S, measured pruned / dense time) per round
    history: list[Round] = []
    for _ in range(rounds if measure is not None else 1):
        dense_now = cal.ms(s_full)
        want_ms = dense_now / speedup if speedup is not None else float(budget_ms or 0.0)
        if cal.ms(s_min) > want_ms * (1 + 1e-9):
            if history:  # the corrected prediction says the request is out of reach: keep what was measured
                break
            check_reachable(cal, s_full, s_min, speedup=speedup, budget_ms=budget_ms)
        alloc: Allocation = allocate_counts(curves, terms, cal.layer_sum_for(want_ms))
        pred_ms = cal.ms(alloc.cost)
        measured = measure(alloc.counts) if measure is not None else None
        history.append(Round(alloc.counts, pred_ms, dense_now / pred_ms, measured))
        if measured is None:
            break
        points.append((alloc.cost, 1.0 / float(measured["speedup"])))
        if abs(_achieved(measured, speedup, budget_ms) - 1) <= tolerance:
            break
        cal = Calibration.through_dense(points, s_full, float(measured["dense_ms"]))
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
