"""The harness times real ONNX Runtime sessions interleaved and refuses unfair comparisons."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from cosep_deploy.backends.onnxruntime import OnnxRuntimeRunner
from cosep_deploy.bench import BenchConfig, BenchReport, bench_runners
from cosep_deploy.errors import BenchError, ConfigError
from cosep_deploy.export import onnx_from_model


def _export(tmp: Path, width: int, name: str) -> Path:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 10),
    ).eval()
    path = tmp / f"{name}.onnx"
    onnx_from_model(model, torch.randn(4, 3, 16, 16), path)
    return path


def test_interleaved_bench_of_wide_and_narrow(tmp_path: Path) -> None:
    wide, narrow = _export(tmp_path, 64, "wide"), _export(tmp_path, 8, "narrow")
    runners = {"dense": OnnxRuntimeRunner(wide, threads=1), "pruned": OnnxRuntimeRunner(narrow, threads=1)}
    cfg = BenchConfig(batch_sizes=(1, 4), warmup=2, iterations=10)
    with runners["dense"], runners["pruned"]:
        report = bench_runners(runners, (3, 16, 16), cfg, baseline="dense", macs={"dense": 100, "pruned": 50})
    for name in ("dense", "pruned"):
        for b in ("1", "4"):
            res = report.engines[name]["results"][b]
            assert res["iterations"] == 10 and len(res["times_ms"]) == 10
            assert res["min_ms"] <= res["median_ms"] <= res["max_ms"]
    s = report.speedups["pruned"]["1"]
    assert s["macs_ratio"] == 2.0 and s["latency_efficiency"] == pytest.approx(s["speedup"] / 2.0)
    assert report.environment["cpu_count"] >= 1
    out = tmp_path / "bench.json"
    report.save(out)
    assert BenchReport.load(out).speedups == report.speedups


def test_different_settings_are_refused(tmp_path: Path) -> None:
    a = _export(tmp_path, 8, "a")
    runners = {"dense": OnnxRuntimeRunner(a, threads=1), "pruned": OnnxRuntimeRunner(a, threads=2)}
    with runners["dense"], runners["pruned"], pytest.raises(BenchError, match="intra_op_threads"):
        bench_runners(runners, (3, 16, 16), BenchConfig(iterations=5, warmup=0))


def test_bad_config() -> None:
    with pytest.raises(ConfigError):
        BenchConfig(batch_sizes=(0,))
    with pytest.raises(ConfigError):
        BenchConfig(iterations=2)


def test_different_input_shapes_are_refused(tmp_path: Path) -> None:
    a = _export(tmp_path, 8, "a")
    runner = OnnxRuntimeRunner(a, threads=1)
    with runner, pytest.raises(BenchError, match="different input shapes"):
        bench_runners({"dense": runner}, (3, 32, 32), BenchConfig(iterations=5, warmup=0))
