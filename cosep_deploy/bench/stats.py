"""Latency statistics: percentiles and a bootstrap confidence interval for a speed-up ratio."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["speedup_with_ci", "summarize"]


def summarize(seconds: Sequence[float], batch_size: int) -> dict[str, Any]:
    """Median, mean, std, min, max, p90/p95/p99 in milliseconds and throughput in images/s."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
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


def speedup_with_ci(
    baseline: Sequence[float], candidate: Sequence[float], *, resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Speed-up = median(baseline) / median(candidate), with a percentile bootstrap interval."""
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    point = float(np.median(a) / np.median(b))
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, a.size, size=(resamples, a.size))
    ib = rng.integers(0, b.size, size=(resamples, b.size))
    ratios = np.median(a[ia], axis=1) / np.median(b[ib], axis=1)
    lo, hi = np.percentile(ratios, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return {"speedup": point, "ci_low": float(lo), "ci_high": float(hi), "level": level, "resamples": resamples}
