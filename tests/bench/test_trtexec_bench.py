"""trtexec benchmarks: interleaved rounds, per-iteration GPU times from --exportTimes, fairness checks.

trtexec cannot be installed on a machine without an NVIDIA GPU, so these tests drive the real command line
construction, subprocess handling and JSON parsing against a stand-in executable that answers like trtexec
10.13 (banner, device line, --exportTimes file in the documented format). Not verified against real trtexec.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cosep_deploy.bench import BenchConfig
from cosep_deploy.bench.schema import validate_bench_json
from cosep_deploy.bench.trtexec_bench import bench_trtexec
from cosep_deploy.engines.manifest import manifest_path_for
from cosep_deploy.errors import BenchError, EngineLoadError
from tests.engines.fake_engines import DGPU, write_engine

STUB = r"""
import json, sys
if "--help" in sys.argv:
    print("&&&& RUNNING TensorRT.trtexec [TensorRT v101300] # trtexec --help")
    sys.exit(0)
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
flags = {a for a in sys.argv[1:] if "=" not in a}
assert {"--useCudaGraph", "--noDataTransfers", "--useSpinWait"} <= flags, flags
engine = open(args["loadEngine"], "rb").read()
batch = int(args["shapes"].split(":")[1].split("x")[0])
base = (2.0 if b"dense" in engine else 1.0) * batch
n = int(args["iterations"])
with open(args["exportTimes"], "w") as fh:
    json.dump([{"startComputeMs": 10.0 * i, "endComputeMs": 10.0 * i + base * (1 + 0.01 * (i % 3)),
                "latencyMs": base * 1.1} for i in range(n)], fh)
print("&&&& RUNNING TensorRT.trtexec [TensorRT v101300] # trtexec " + " ".join(sys.argv[1:]))
print("[11/24/2026-10:00:00] [I] Selected Device: NVIDIA Stub GPU")
print("[11/24/2026-10:00:00] [I] Compute Capability: 9.0")
print("&&&& PASSED TensorRT.trtexec [TensorRT v101300]")
"""


@pytest.fixture
def stub(tmp_path: Path) -> Path:
    exe = tmp_path / "trtexec"
    exe.write_text(f"#!{sys.executable}\n{STUB}")
    exe.chmod(0o755)
    return exe


def _engine(tmp_path: Path, name: str, *, version: str = "10.13.0.35", precision: str = "fp16") -> Path:
    engine = tmp_path / f"{name}.engine"
    fields = {**DGPU, "onnx_file": f"{name}.onnx", "precision": precision, "runtime_version": version}
    write_engine(engine, f"ENGINE {name}".encode() * 8, **{**fields, "device_name": "NVIDIA Stub GPU"})
    return engine


def test_interleaved_rounds_give_paired_gpu_times(stub: Path, tmp_path: Path) -> None:
    engines = {"dense": _engine(tmp_path, "dense"), "pruned": _engine(tmp_path, "pruned")}
    cfg = BenchConfig(batch_sizes=(1, 8), iterations=12, min_seconds=0, warmup=2)
    report = bench_trtexec(
        engines, "input", (3, 32, 32), cfg, rounds=3, executable=stub, macs={"dense": 300, "pruned": 100}
    )
    assert report.settings["backend"] == "trtexec" and report.settings["device"] == "NVIDIA Stub GPU"
    assert report.settings["runtime_version"] == "10.13.0" and report.settings["precision"] == "fp16"
    dense = report.engines["dense"]["results"]["8"]
    assert dense["iterations"] == 12 and dense["median_ms"] == pytest.approx(16.08)  # 2 ms x 8 x (1, 1.01, 1.02, 1)
    s = report.speedups["pruned"]["8"]
    assert s["speedup"] == pytest.approx(2.0) and s["pairs"] == 12 and s["macs_ratio"] == 3.0
    assert s["latency_efficiency"] == pytest.approx(2.0 / 3.0)
    assert np.allclose(report.engines["pruned"]["results"]["1"]["times_ms"][:3], [1.0, 1.01, 1.02])
    assert validate_bench_json(json.loads(json.dumps(report.to_json())), required=True)


def test_engines_from_elsewhere_or_mixed_precisions_are_refused(stub: Path, tmp_path: Path) -> None:
    old = _engine(tmp_path, "old", version="8.6.1.6")
    with pytest.raises(EngineLoadError, match=r"built by TensorRT 8\.6\.1\.6, but this trtexec is 10\.13\.0"):
        bench_trtexec({"old": old}, "input", (3, 8, 8), BenchConfig(min_seconds=0), executable=stub)
    a, b = _engine(tmp_path, "dense"), _engine(tmp_path, "pruned", precision="int8")
    with pytest.raises(BenchError, match="different precisions"):
        bench_trtexec({"dense": a, "pruned": b}, "input", (3, 8, 8), BenchConfig(min_seconds=0), executable=stub)
    a.write_bytes(b"truncated")
    with pytest.raises(EngineLoadError):
        bench_trtexec({"dense": a}, "input", (3, 8, 8), BenchConfig(min_seconds=0), executable=stub)
    manifest_path_for(b).unlink()
    with pytest.raises(EngineLoadError, match="no manifest"):
        bench_trtexec({"pruned": b}, "input", (3, 8, 8), BenchConfig(min_seconds=0), executable=stub)


def test_cli_trtexec_needs_tensorrt_engines(small_run: Path) -> None:
    from click.testing import CliRunner

    from cosep_deploy.cli.main import cli

    result = CliRunner().invoke(cli, ["bench", "--run", str(small_run), "--trtexec", "--batch-sizes", "1"])
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert "--trtexec needs TensorRT engines" in result.output and "pruned.engine" in result.output
