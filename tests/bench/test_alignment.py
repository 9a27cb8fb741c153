"""The channel alignment sweep on a small real model: real pruning, real exports, real ONNX Runtime timing."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cosep_deploy.bench.alignment import sweep_alignment
from cosep_deploy.bench.harness import BenchConfig
from cosep_deploy.errors import ConfigError, PruneError
from cosep_deploy.prune import PruneConfig

QUICK = BenchConfig(batch_sizes=(2,), warmup=1, warmup_seconds=0.0, iterations=5, min_seconds=0.0)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 4),
    )


def test_sweep_times_every_alignment_and_recommends_the_best() -> None:
    x = torch.randn(2, 3, 16, 16)
    out = sweep_alignment(
        _net(),
        [],
        x,
        candidates=(1, 4),
        prune_config=PruneConfig(method="l1", ratio=0.5),
        bench_config=QUICK,
        threads=1,
    )
    assert [r["round_to"] for r in out["results"]] == [1, 4] and out["skipped"] == []
    for r in out["results"]:
        speedups = [s["speedup"] for s in r["speedup"].values()]
        assert list(r["speedup"]) == ["2"] and all(s > 0 for s in speedups)
        assert r["score"] == pytest.approx(math.prod(speedups) ** (1 / len(speedups)))
        assert r["macs_ratio"] > 1.0
    assert out["recommended"] == max(out["results"], key=lambda r: r["score"])["round_to"]


def test_sweep_refuses_bad_candidates_and_budgets_no_alignment_reaches() -> None:
    x = torch.randn(2, 3, 16, 16)
    with pytest.raises(ConfigError, match="positive integers"):
        sweep_alignment(_net(), [], x, candidates=(0, 8))
    with pytest.raises(PruneError, match="no alignment"):
        sweep_alignment(
            _net(),
            [],
            x,
            candidates=(1, 8),  # one channel per group gives 4.75x: no alignment reaches 10x
            prune_config=PruneConfig(method="l1", target_macs_ratio=10.0),
            bench_config=QUICK,
            threads=1,
        )
