"""The latency benchmarks' own logic: the MACs-budget search to a measured speed-up, and the seed summary."""

from __future__ import annotations

import types
from typing import Any

import pytest

from bench.latency_accuracy import summarize
from bench.latency_targeted import macs_budget_at_speedup
from cosep_deploy.errors import PruneError


def _plan(ratio: float) -> Any:
    return types.SimpleNamespace(macs_ratio=ratio, cost_after={"macs": 1e9 / ratio, "params": 1e6 / ratio})


@pytest.mark.parametrize(("alpha", "target"), [(0.6, 1.5), (0.6, 2.0), (1.3, 2.0), (0.35, 1.4)])
def test_macs_search_reaches_the_measured_speedup(alpha: float, target: float) -> None:
    """The 'device': speed-up = MACs ratio ** alpha (alpha < 1: MACs overstate the gain, as measured on CPUs)."""
    asked: list[float] = []

    def prune_at(ratio: float) -> tuple[Any, Any]:
        asked.append(ratio)
        return ratio, _plan(ratio)

    def measure(model: Any) -> dict[str, Any]:
        return {"speedup": float(model) ** alpha}

    found = macs_budget_at_speedup(prune_at, measure, target, first_ratio=target, steps=4, tolerance=0.03)
    best = found["best"]
    assert abs(best["measured"]["speedup"] / target - 1) <= 0.03, found
    assert len(found["tries"]) == len(asked) <= 4 and asked[0] == target
    assert best["macs_ratio"] == pytest.approx(target ** (1 / alpha), rel=0.05)


def test_macs_search_keeps_what_it_measured_when_a_ratio_cannot_be_pruned() -> None:
    def prune_at(ratio: float) -> tuple[Any, Any]:
        if ratio > 2.5:
            raise PruneError("MACs target beyond the minimum keep")
        return ratio, _plan(ratio)

    found = macs_budget_at_speedup(
        prune_at, lambda m: {"speedup": float(m) ** 0.5}, 2.0, first_ratio=2.0, steps=4, tolerance=0.03
    )
    assert "error" in found["tries"][-1] and found["best"]["target_macs_ratio"] == 2.0


def test_seed_summary_pairs_methods_by_seed() -> None:
    rows = []
    for seed, (lat, macs) in enumerate([(0.95, 0.93), (0.96, 0.93), (0.94, 0.92)]):
        for method, top1 in (("cosep_latency", lat), ("cosep_macs", macs)):
            rows.append(
                {
                    "seed": seed,
                    "requested_speedup": 1.5,
                    "method": method,
                    "measured_speedup": 1.5,
                    "macs_ratio": 2.0,
                    "top1_before_ft": top1 - 0.1,
                    "top1_after_ft": top1,
                }
            )
    summary = {e["method"]: e for e in summarize(rows)}
    assert summary["cosep_latency"]["after_ft"]["mean"] == pytest.approx(0.95)
    diff = summary["cosep_latency - cosep_macs"]["after_ft"]
    assert diff["mean"] == pytest.approx(0.0233333, rel=1e-4) and diff["n"] == 3 and diff["ci95"] is not None
    assert summary["cosep_latency - l1_latency"]["after_ft"]["n"] == 0  # no L1 rows: nothing paired


@pytest.mark.parametrize("method", ["cosep", "l1"])
def test_accuracy_script_configs_are_valid_for_the_latency_prune_and_the_macs_budget(method: str) -> None:
    import dataclasses

    from bench.latency_accuracy import _parser, _Seed

    args = _parser().parse_args(["--out", "unused.json"])
    s = _Seed(args, 3, None, 0.0, None, None, None, "", {})
    cfg = s.config(method)  # a PruneConfig refuses a method without a count source
    assert cfg.method == method and cfg.seed == 3 and cfg.round_to == args.round_to
    assert dataclasses.replace(s.config("cosep"), target_macs_ratio=2.0).target_macs_ratio == 2.0
