from __future__ import annotations

import numpy as np

from cosep_deploy.bench.stats import speedup_with_ci, summarize


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
