"""The harness times real ONNX Runtime sessions interleaved and refuses unfair comparisons."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cosep_deploy.backends.base import parse_proc_status_memory
from cosep_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner, ort_session_options
from cosep_deploy.backends.torch.runner import TorchRunner
from cosep_deploy.bench import BenchConfig, BenchReport, bench_runners
from cosep_deploy.bench.schema import validate_bench_json
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
    cfg = BenchConfig(batch_sizes=(1, 4), warmup=2, iterations=10, min_seconds=0)
    with runners["dense"], runners["pruned"]:
        report = bench_runners(runners, (3, 16, 16), cfg, baseline="dense", macs={"dense": 100, "pruned": 50})
    for name in ("dense", "pruned"):
        for b in ("1", "4"):
            res = report.engines[name]["results"][b]
            assert res["iterations"] == 10 and len(res["times_ms"]) == 10
            assert res["min_ms"] <= res["median_ms"] <= res["max_ms"]
    s = report.speedups["pruned"]["1"]
    times = report.engines
    ratios = np.array(times["dense"]["results"]["1"]["times_ms"]) / np.array(
        times["pruned"]["results"]["1"]["times_ms"]
    )
    assert s["median_paired_ratio"] == pytest.approx(float(np.median(ratios))) and s["pairs"] == 10
    d, p = (report.engines[n]["results"]["1"]["median_ms"] for n in ("dense", "pruned"))
    assert s["speedup"] == pytest.approx(d / p)
    assert s["macs_ratio"] == 2.0 and s["latency_efficiency"] == pytest.approx(s["speedup"] / 2.0)
    assert report.environment["cpu_count"] >= 1
    memory = report.engines["pruned"]["memory"]
    assert memory["model_file_bytes"] == narrow.stat().st_size and memory["session_load_rss_bytes"] is not None
    assert memory["process_peak_rss_bytes"] >= memory["process_rss_bytes"] > 0
    growth = memory["rss_growth_since_load_bytes"]  # process RSS after the runs less RSS before creation
    assert isinstance(growth, int) and growth < memory["process_peak_rss_bytes"]
    out = tmp_path / "bench.json"
    report.save(out)
    assert BenchReport.load(out).speedups == report.speedups
    assert validate_bench_json(json.loads(out.read_text()), required=True)


def test_min_seconds_takes_more_samples_than_the_count(tmp_path: Path) -> None:
    a = _export(tmp_path, 8, "a")
    runners = {"dense": OnnxRuntimeRunner(a, threads=1, name="x"), "pruned": OnnxRuntimeRunner(a, threads=1, name="y")}
    cfg = BenchConfig(batch_sizes=(1,), warmup=1, iterations=5, min_seconds=0.2)
    with runners["dense"], runners["pruned"]:
        report = bench_runners(runners, (3, 16, 16), cfg)
    for name in runners:
        res = report.engines[name]["results"]["1"]
        assert res["iterations"] > 5 and sum(res["times_ms"]) >= 200.0
    assert (
        report.engines["dense"]["results"]["1"]["iterations"] == report.engines["pruned"]["results"]["1"]["iterations"]
    )


def test_throughput_mode_runs_concurrent_streams(tmp_path: Path) -> None:
    wide, narrow = _export(tmp_path, 64, "wide"), _export(tmp_path, 8, "narrow")
    runners = {"dense": OnnxRuntimeRunner(wide, threads=1), "pruned": OnnxRuntimeRunner(narrow, threads=1)}
    cfg = BenchConfig(batch_sizes=(2,), warmup=1, mode="throughput", streams=2, rounds=2, round_seconds=0.2)
    with runners["dense"], runners["pruned"]:
        report = bench_runners(runners, (3, 16, 16), cfg)
    res = report.engines["pruned"]["results"]["2"]
    assert res["streams"] == 2 and len(res["throughput_ips_per_round"]) == 2 and res["iterations"] >= 2
    assert res["throughput_ips"] == pytest.approx(float(np.median(res["throughput_ips_per_round"])))
    s = report.speedups["pruned"]["2"]
    dense = report.engines["dense"]["results"]["2"]
    assert s["speedup"] == pytest.approx(res["throughput_ips"] / dense["throughput_ips"])  # the table's two columns
    ratios = np.array(res["throughput_ips_per_round"]) / np.array(dense["throughput_ips_per_round"])
    assert s["median_paired_ratio"] == pytest.approx(float(np.median(ratios))) and s["pairs"] == 2
    assert report.mode == "throughput" and validate_bench_json(report.to_json(), required=True)


def test_throughput_mode_refuses_runners_that_are_not_thread_safe(tmp_path: Path) -> None:
    class Serial(OnnxRuntimeRunner):
        concurrent_safe = False

    runner = Serial(_export(tmp_path, 8, "a"), threads=1)
    with runner, pytest.raises(BenchError, match="throughput mode"):
        bench_runners({"dense": runner}, (3, 16, 16), BenchConfig(mode="throughput", rounds=2))


def test_version_1_reports_still_load(tmp_path: Path) -> None:
    a = _export(tmp_path, 8, "a")
    runner = OnnxRuntimeRunner(a, threads=1)
    with runner:
        report = bench_runners(
            {"dense": runner}, (3, 16, 16), BenchConfig(batch_sizes=(1,), iterations=5, min_seconds=0)
        )
    old = {k: v for k, v in report.to_json().items() if k != "mode"} | {"schema_version": 1}
    assert BenchReport.from_json(old).mode == "latency"
    with pytest.raises(BenchError, match="does not match its schema at engines/dense/results"):
        broken = report.to_json()
        broken["engines"]["dense"]["results"]["1"]["median_ms"] = -1.0
        validate_bench_json(broken, required=True)


def test_different_settings_are_refused(tmp_path: Path) -> None:
    a = _export(tmp_path, 8, "a")
    runners = {"dense": OnnxRuntimeRunner(a, threads=1), "pruned": OnnxRuntimeRunner(a, threads=2)}
    with runners["dense"], runners["pruned"], pytest.raises(BenchError, match="intra_op_threads"):
        bench_runners(runners, (3, 16, 16), BenchConfig(iterations=5, warmup=0, min_seconds=0))


def test_spin_waiting_is_off_by_default_and_must_match(tmp_path: Path) -> None:
    """Spinning worker threads of an idle session steal cores from the session being timed (see the ORT
    backend's docstring), so benchmark sessions do not spin, and engines that differ in it are refused."""
    opts = ort_session_options(2)
    for pool in ("intra_op", "inter_op"):
        assert opts.get_session_config_entry(f"session.{pool}.allow_spinning") == "0"
    assert ort_session_options(2, spin_wait=True).get_session_config_entry("session.intra_op.allow_spinning") == "1"
    a = _export(tmp_path, 8, "a")
    runners = {"dense": OnnxRuntimeRunner(a, threads=1), "pruned": OnnxRuntimeRunner(a, threads=1, spin_wait=True)}
    with runners["dense"], runners["pruned"], pytest.raises(BenchError, match="spin_wait"):
        bench_runners(runners, (3, 16, 16), BenchConfig(iterations=5, warmup=0, min_seconds=0))


def test_bad_config() -> None:
    with pytest.raises(ConfigError):
        BenchConfig(batch_sizes=(0,))
    with pytest.raises(ConfigError):
        BenchConfig(iterations=2)
    with pytest.raises(ConfigError, match="unknown benchmark mode"):
        BenchConfig(mode="fast")


def test_different_input_shapes_are_refused(tmp_path: Path) -> None:
    a = _export(tmp_path, 8, "a")
    runner = OnnxRuntimeRunner(a, threads=1)
    with runner, pytest.raises(BenchError, match="different input shapes"):
        bench_runners({"dense": runner}, (3, 32, 32), BenchConfig(iterations=5, warmup=0))


def test_warm_up_lasts_its_count_and_its_seconds(tmp_path: Path) -> None:
    class Counting(OnnxRuntimeRunner):
        calls: list[float]

        def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            self.calls.append(time.perf_counter())
            return super().infer(feed)

    runner = Counting(_export(tmp_path, 8, "a"), threads=1)
    for warmup, seconds in ((3, 0.0), (2, 0.15)):
        runner.calls = []
        cfg = BenchConfig(batch_sizes=(1,), warmup=warmup, warmup_seconds=seconds, iterations=5, min_seconds=0)
        with runner:
            before = time.perf_counter()  # no later than the warm-up's own start
            report = bench_runners({"dense": runner}, (3, 16, 16), cfg)
        n_warm = len(runner.calls) - report.engines["dense"]["results"]["1"]["iterations"]
        assert report.config["warmup_seconds"] == seconds
        if seconds == 0:
            assert n_warm == warmup  # the count alone
        else:  # both: the last warm-up call began within the warm-up seconds, the first timed call after them.
            # Orderings of one monotonic clock, not speed: they hold however slow or loaded the machine is.
            first, last, timed = runner.calls[0], runner.calls[n_warm - 1], runner.calls[n_warm]
            assert n_warm >= warmup and last - first < seconds and timed - before >= seconds
    with pytest.raises(ConfigError, match="warm-up"):
        BenchConfig(warmup_seconds=-1.0)


def test_proc_status_memory_parser() -> None:
    status = "Name:\tpython\nVmPeak:\t 900 kB\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t4\n"
    assert parse_proc_status_memory(status) == {"rss_bytes": 1024 * 1024, "peak_rss_bytes": 2048 * 1024}
    assert parse_proc_status_memory("Name:\tkthreadd\nThreads:\t1\n") is None  # kernel threads have no Vm* lines


def test_torch_runners_in_throughput_mode_report_their_parameters() -> None:
    torch.manual_seed(0)
    head = (nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    models = {n: nn.Sequential(nn.Conv2d(3, w, 3), *head, nn.Linear(w, 2)) for n, w in (("dense", 32), ("pruned", 8))}
    runners = {n: TorchRunner(m, threads=1, input_shape=(3, 16, 16), name=n) for n, m in models.items()}
    cfg = BenchConfig(batch_sizes=(2,), warmup=1, warmup_seconds=0, mode="throughput", rounds=2, round_seconds=0.1)
    with runners["dense"], runners["pruned"]:
        report = bench_runners(runners, (3, 16, 16), cfg)
    for n, m in models.items():
        assert report.engines[n]["memory"]["parameter_bytes"] == 4 * sum(p.numel() for p in m.parameters())
        assert report.engines[n]["results"]["2"]["streams"] == 2
    assert validate_bench_json(report.to_json(), required=True)
