"""Speed-up of pruned over dense from interleaved trtexec rounds, with a bootstrap interval (stdlib only).

The same estimator as the host's ``bench`` (:func:`cosep_deploy.bench.stats.paired_speedup`): iteration ``i``
of a round of one engine is paired with iteration ``i`` of the same round of the other; the speed-up is
median(dense) / median(pruned) and its interval the percentile bootstrap over resampled pairs.
"""

from __future__ import annotations

import random
import statistics
from typing import Any, Sequence

__all__ = ["paired_speedup", "summarize_ms"]

MAX_PAIRS = 2000  # pure-Python bootstrap: a deterministic thinning keeps it to seconds on a board CPU


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize_ms(values: Sequence[float]) -> dict[str, float]:
    """count, mean, median, min, max and p90/p95/p99 of millisecond samples."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0.0}
    out = {"count": float(len(ordered)), "mean": sum(ordered) / len(ordered)}
    out.update(median=_quantile(ordered, 0.5), min=ordered[0], max=ordered[-1])
    for p in (90, 95, 99):
        out["p%d" % p] = _quantile(ordered, p / 100.0)
    return out


def paired_speedup(
    baseline: Sequence[float], candidate: Sequence[float], *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Speed-up of ``candidate`` over ``baseline`` (equally long series of paired times)."""
    if len(baseline) != len(candidate) or not baseline:
        raise ValueError("paired speed-up needs two equally long, non-empty series of times")
    if min(baseline) <= 0 or min(candidate) <= 0:
        raise ValueError("paired speed-up needs positive times")
    step = max(1, len(baseline) // MAX_PAIRS)
    a: list[float] = list(baseline)[::step]
    b: list[float] = list(candidate)[::step]
    rng = random.Random(seed)
    n = len(a)
    ratios = []
    for _ in range(resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        ratios.append(statistics.median([a[i] for i in idx]) / statistics.median([b[i] for i in idx]))
    ratios.sort()
    tail = (1.0 - level) / 2.0
    return {
        "speedup": statistics.median(baseline) / statistics.median(candidate),
        "ci_low": _quantile(ratios, tail),
        "ci_high": _quantile(ratios, 1.0 - tail),
        "level": level,
        "resamples": resamples,
        "pairs": len(baseline),
        "estimator": "ratio of medians, pair bootstrap",
        "median_paired_ratio": statistics.median([x / y for x, y in zip(baseline, candidate)]),
    }
