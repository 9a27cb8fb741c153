from __future__ import annotations

import numpy as np
import pytest

from cosep_deploy.bench.stats import paired_speedup, speedup_with_ci, summarize
from cosep_deploy.errors import BenchError


def test_summarize_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    s = rng.gamma(4.0, 0.001, size=201)
    out = summarize(s.tolist(), batch_size=8)
    assert np.isclose(out["median_ms"], np.median(s) * 1e3)
    assert np.isclose(out["p99_ms"], np.percentile(s, 99) * 1e3)
    assert np.isclose(out["throughput_ips"], 8 / np.median(s))
    assert out["iterations"] == 201


def test_speedup_ci_contains_true_ratio_and_shrinks_with_samples() -> None:
    rng = np.random.default_rng(1)
    dense = 2.0 + rng.normal(0, 0.05, 400)
    pruned = 1.0 + rng.normal(0, 0.05, 400)
    s = speedup_with_ci(dense, pruned, seed=0)
    assert s["ci_low"] <= 2.0 <= s["ci_high"]
    assert s["ci_low"] <= s["speedup"] <= s["ci_high"]
    small = speedup_with_ci(dense[:20], pruned[:20], seed=0)
    assert (small["ci_high"] - small["ci_low"]) > (s["ci_high"] - s["ci_low"])


def test_paired_speedup_matches_a_direct_computation() -> None:
    dense = np.array([4.0, 6.0, 5.0, 8.0, 3.0])
    pruned = np.array([2.0, 2.0, 2.5, 2.0, 3.0])
    s = paired_speedup(dense, pruned, seed=0, resamples=500)
    assert s["speedup"] == 5.0 / 2.0
    assert s["median_paired_ratio"] == 2.0  # ratios 2, 3, 2, 4, 1
    assert s["pairs"] == 5 and s["ci_low"] <= 2.5 <= s["ci_high"]
    rng = np.random.default_rng(0)  # the interval, recomputed independently with the same pair resampling
    idx = rng.integers(0, 5, size=(500, 5))
    boot = np.median(dense[idx], axis=1) / np.median(pruned[idx], axis=1)
    assert (s["ci_low"], s["ci_high"]) == tuple(np.percentile(boot, [2.5, 97.5]))


def test_pairing_narrows_the_interval_under_common_drift() -> None:
    """Load that slows both engines of a pair alike widens an unpaired interval, not a paired one."""
    rng = np.random.default_rng(2)
    drift = np.exp(rng.normal(0, 0.3, 300))  # per-pair machine speed, shared by both engines of the pair
    dense = 2.0 * drift * (1 + rng.normal(0, 0.01, 300))
    pruned = 1.0 * drift * (1 + rng.normal(0, 0.01, 300))
    paired, unpaired = paired_speedup(dense, pruned, seed=0), speedup_with_ci(dense, pruned, seed=0)
    assert paired["ci_low"] <= 2.0 <= paired["ci_high"] and abs(paired["speedup"] - 2.0) < 0.01
    assert (paired["ci_high"] - paired["ci_low"]) * 5 < unpaired["ci_high"] - unpaired["ci_low"]


def test_paired_speedup_rejects_bad_series() -> None:
    with pytest.raises(BenchError, match="equally long"):
        paired_speedup([1.0, 2.0], [1.0])
    with pytest.raises(BenchError, match="positive"):
        paired_speedup([1.0, 0.0], [1.0, 1.0])
