"""`build` for every kind of target: ONNX Runtime here, Jetson deploy bundles, TensorRT (needs a GPU)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cosep_deploy.cli.main import cli
from cosep_deploy.targets import list_targets


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--quiet", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("target", [t.name for t in list_targets() if t.kind == "jetson"])
def test_jetson_target_gets_deploy_bundles(small_run: Path, target: str) -> None:
    code, output = _invoke("build", "--run", str(small_run), "--target", target)
    assert code == 0, output
    bundle = small_run / "engines" / target / "bundle"  # one bundle: dense and pruned timed together on the board
    for rel in ("build_and_bench.sh", "README.md", "target.toml", "bundle.json", "cosep_onboard/run.py"):
        assert (bundle / rel).is_file(), rel
    for model in ("dense", "pruned"):
        assert (bundle / f"onnx/{model}.fp32.onnx").is_file()
    subprocess.run(["bash", "-n", str(bundle / "build_and_bench.sh")], check=True)
    # benchmarking happens on the board: say so instead of timing nothing
    code, output = _invoke("bench", "--run", str(small_run), "--target", target)
    assert code == 1 and "on the board" in output


def test_tensorrt_target_without_tensorrt_is_a_clear_error(small_run: Path) -> None:
    pytest.importorskip("cosep_deploy.backends.tensorrt.engine")
    from cosep_deploy.deps import is_available

    if is_available("tensorrt"):
        pytest.skip("TensorRT is installed here")
    code, output = _invoke("build", "--run", str(small_run), "--target", "dgpu-ampere-plus")
    assert code == 3 and output.startswith("error: ") and "pip install" in output, output  # exit 3: missing
    assert not (small_run / "engines" / "dgpu-ampere-plus").exists()  # nothing half-built


def test_unknown_target(small_run: Path) -> None:
    code, output = _invoke("build", "--run", str(small_run), "--target", "jetson-agx-orn")
    assert code == 1 and "jetson-agx-orin" in output


def test_alignment_sweep_recommends_a_candidate(small_run: Path) -> None:
    import json

    code, output = _invoke(
        "bench",
        "--run",
        str(small_run),
        "--sweep-alignment",
        "1,8",
        "--batch-sizes",
        "1",
        "--iterations",
        "5",
        "--min-seconds",
        "0",
        "--warmup",
        "1",
        "--threads",
        "1",
    )
    assert code == 0, output
    result = json.loads((small_run / "bench" / "alignment.json").read_text())
    assert result["recommended"] in (1, 8)
    assert [r["round_to"] for r in result["results"]] == [1, 8]
    for r in result["results"]:
        assert r["macs_ratio"] > 1 and r["speedup"]["1"]["speedup"] > 0


def test_bench_cli_throughput_mode_writes_a_valid_report(small_run: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from cosep_deploy.bench.schema import validate_bench_json

    run = shutil.copytree(small_run, tmp_path / "run")  # the shared run keeps its latency-mode bench.json
    args = ["bench", "--run", str(run), "--batch-sizes", "1,4", "--mode", "throughput", "--streams", "2"]
    result = CliRunner().invoke(cli, [*args, "--min-seconds", "0.6", "--warmup", "1", "--threads", "1"])
    code, output = result.exit_code, result.output
    assert code == 0, output
    assert "throughput mode" in output and "img/s" in output and "session load" not in output
    report = json.loads((run / "bench" / "bench.json").read_text())
    assert report["mode"] == "throughput" and report["config"]["streams"] == 2
    assert validate_bench_json(report, required=True)
