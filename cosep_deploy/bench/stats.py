"""Latency statistics: percentiles, and speed-up ratios with bootstrap confidence intervals.

Speed-up of interleaved runs: the harness runs dense and pruned interleaved (A B B A ...), so iteration ``i``
of each engine ran within milliseconds of the other, and both series sample the same stretch of machine
state. The point estimate is the ratio of the two medians (robust to the outliers that a burst of load
adds). Its interval resamples whole *pairs* of iterations rather than each series on its own: drift that
moved both engines' times together then moves both resampled medians together and cancels in the ratio,
so the interval reflects the noise that does not cancel. The median of the per-pair ratios is reported
too; it is not the point estimate because with skewed, independent per-iteration noise the median of
ratios is not the ratio of typical times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cosep_deploy.errors import BenchError

__all__ = ["paired_speedup", "speedup_with_ci", "summarize"]


def summarize(seconds: Sequence[float], batch_size: int) -> dict[str, Any]:
    """Median, mean, std, min, max, p90/p95/p99 in milliseconds and throughput in images/s."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if ms.size == 0:
        raise BenchError("no timed iterations to summarize")
    median = float(np.median(ms))
    return {
        "iterations": int(ms.size),
        "median_ms": median,
        "mean_ms": float(ms.mean()),
        "std_ms": float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "p90_ms": float(np.percentile(ms, 90)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "throughput_ips": batch_size / (median / 1e3) if median > 0 else float("inf"),
    }


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.percentile(samples, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def speedup_with_ci(
    baseline: Sequence[float], candidate: Sequence[float], *, resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Unpaired speed-up = median(baseline) / median(candidate), with a percentile bootstrap interval
    (each sample resampled on its own). Use :func:`paired_speedup` when the times were interleaved."""
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    point = float(np.median(a) / np.median(b))
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, a.size, size=(resamples, a.size))
    ib = rng.integers(0, b.size, size=(resamples, b.size))
    lo, hi = _interval(np.median(a[ia], axis=1) / np.median(b[ib], axis=1), level)
    return {"speedup": point, "ci_low": lo, "ci_high": hi, "level": level, "resamples": resamples}


def paired_speedup(
    baseline: Sequence[float], candidate: Sequence[float], *, resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Speed-up of ``candidate`` over ``baseline`` from interleaved series of times (same length, pair ``i``
    taken back to back): median(baseline) / median(candidate), with a percentile bootstrap interval over
    resampled pairs; also the median of the per-pair ratios."""
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise BenchError(f"paired speed-up needs two equally long series of times, got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(a > 0) and np.all(b > 0)):
        raise BenchError("paired speed-up needs finite, positive times")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(resamples, a.size))
    lo, hi = _interval(np.median(a[idx], axis=1) / np.median(b[idx], axis=1), level)
    return {
        "speedup": float(np.median(a) / np.median(b)),
        "ci_low": lo,
        "ci_high": hi,
        "level": level,
        "resamples": resamples,
        "pairs": int(a.size),
        "estimator": "ratio of medians, pair bootstrap",
        "median_paired_ratio": float(np.median(a / b)),
    }
