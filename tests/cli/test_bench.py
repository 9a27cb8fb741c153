"""``cosep-deploy bench`` on a real run: the table with speed-up intervals and memory, JSON output, options."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cosep_deploy.bench.schema import validate_bench_json
from cosep_deploy.cli.main import cli


def test_bench_prints_speedups_with_intervals_and_memory(small_run: Path, tmp_path: Path) -> None:
    run = shutil.copytree(small_run, tmp_path / "run")  # the shared run keeps its own bench.json
    args = [
        "bench",
        "--run",
        str(run),
        "--batch-sizes",
        "1,2",
        "--iterations",
        "5",
        "--min-seconds",
        "0.05",
        "--warmup",
        "1",
        "--warmup-seconds",
        "0",
        "--threads",
        "1",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for needle in ("latency mode, median ms", "dense", "pruned", "speed-up", "95% CI", "memory", "process peak RSS MB"):
        assert needle in result.output, needle
    assert "\u2026" not in result.output  # nothing cut off at the default 80 columns
    report = json.loads((run / "bench" / "bench.json").read_text())
    assert validate_bench_json(report, required=True)
    assert report["config"]["batch_sizes"] == [1, 2] and report["config"]["min_seconds"] == 0.05
    assert report["config"]["warmup"] == 1 and report["config"]["warmup_seconds"] == 0
    for b in ("1", "2"):
        s = report["speedups"]["pruned"][b]
        assert f"{s['ci_low']:.2f}-{s['ci_high']:.2f}" in result.output
        dense, pruned = (report["engines"][n]["results"][b] for n in ("dense", "pruned"))
        assert dense["iterations"] == pruned["iterations"] >= 5  # interleaved: one sample of each per round
    assert report["engines"]["pruned"]["memory"]["model_file_bytes"] > 0

    as_json = CliRunner().invoke(cli, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    speedups = json.loads(as_json.output)["pruned"]
    assert set(speedups) == {"1", "2"}
    for s in speedups.values():  # the speed-up beside the figures it came from
        assert s["speedup"] == pytest.approx(s["baseline_median_ms"] / s["median_ms"], rel=1e-9)
        assert s["p99_ms"] > 0 and s["images_per_s"] > 0


def test_bench_options_and_defaults() -> None:
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert result.exit_code == 0
    for needle in (
        "--batch-sizes",
        "1,8,40",
        "--iterations",
        "--min-seconds",
        "--warmup",
        "--warmup-seconds",
        "--mode",
        "--streams",
        "--sweep-alignment",
    ):
        assert needle in result.output, needle
    bad = CliRunner().invoke(cli, ["bench", "--run", "x", "--batch-sizes", "1,0"])
    assert bad.exit_code == 2 and "batch sizes must be positive integers" in bad.output


def test_bench_throughput_mode(small_run: Path, tmp_path: Path) -> None:
    run = shutil.copytree(small_run, tmp_path / "run")
    args = [
        "bench",
        "--run",
        str(run),
        "--batch-sizes",
        "2",
        "--min-seconds",
        "0",
        "--warmup",
        "1",
        "--warmup-seconds",
        "0",
        "--threads",
        "1",
        "--mode",
        "throughput",
        "--streams",
        "2",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "throughput mode, img/s" in result.output
    report = json.loads((run / "bench" / "bench.json").read_text())
    assert validate_bench_json(report, required=True) and report["mode"] == "throughput"
    dense, pruned = (report["engines"][n]["results"]["2"] for n in ("dense", "pruned"))
    assert dense["streams"] == pruned["streams"] == 2 and len(pruned["throughput_ips_per_round"]) == 6
    assert f"{pruned['throughput_ips']:.1f}" in result.output
    assert report["speedups"]["pruned"]["2"]["speedup"] == pruned["throughput_ips"] / dense["throughput_ips"]
