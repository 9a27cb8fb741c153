"""Jetson deploy bundles: complete, syntactically valid, and the script really runs (against a stub trtexec
that mimics the 8.5, 10.x and 11.x banners and exports; no TensorRT here)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cosep_deploy.backends.trtexec.parse import parse_export_profile, parse_export_times, parse_layer_info
from cosep_deploy.board.bundle import jetson_bundle_from_onnx
from cosep_deploy.engines.manifest import EngineManifest, verify_engine_file
from cosep_deploy.errors import ConfigError
from cosep_deploy.targets import get_target, list_targets, load_target

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

JETSONS = [t.name for t in list_targets() if t.kind == "jetson"]
BASH = shutil.which("bash")


def _onnx(path: Path, kind: str, batch: int | str = "batch") -> Path:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 3, 8, 8])
    inits = []
    if kind == "fp16":
        nodes = [
            helper.make_node("Cast", ["input"], ["h"], to=TensorProto.FLOAT16),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("Cast", ["r"], ["output"], to=TensorProto.FLOAT),
        ]
    elif kind == "int8":
        inits = [
            helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
            helper.make_tensor("z", TensorProto.INT8, [], [0]),
        ]
        nodes = [
            helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["output"]),
        ]
    else:
        nodes = [helper.make_node("Relu", ["input"], ["output"])]
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture
def variants(tmp_path: Path) -> dict[str, Path]:
    return {p: _onnx(tmp_path / f"src-{p}.onnx", p) for p in ("fp16", "int8")}


@pytest.mark.parametrize("name", JETSONS)
def test_bundle_is_complete_for_every_jetson(name: str, tmp_path: Path, variants: dict[str, Path]) -> None:
    target = get_target(name)
    out = jetson_bundle_from_onnx(variants, target, tmp_path / "bundle", model_name="resnet20", batch_sizes=(40, 1, 8))
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "build_and_bench.sh",
        "fill_manifest.py",
        "manifest.template.json",
        "onnx/resnet20.fp16.onnx",
        "onnx/resnet20.int8.onnx",
        "target.toml",
    ]
    assert (out / "onnx" / "resnet20.int8.onnx").read_bytes() == variants["int8"].read_bytes()
    assert load_target(out / "target.toml") == target
    script = out / "build_and_bench.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    assert "nvpmodel -q" in text and "jetson_clocks --show" in text and "/usr/src/tensorrt/bin/trtexec" in text
    if BASH:
        subprocess.run([BASH, "-n", str(script)], check=True)
    template = json.loads((out / "manifest.template.json").read_text())
    ids = [e["id"] for e in template["engines"]]
    assert ids == [f"resnet20.{p}.b{b}" for p in ("fp16", "int8") for b in (1, 8, 40)]
    entry = template["engines"][0]
    assert entry["manifest"]["engine_sha256"] is None and entry["manifest"]["target"] == name
    strict, typed, weak = (entry["commands"][f] for f in ("strict", "typed", "weak"))
    assert "--fp16" not in strict and "--stronglyTyped" not in strict and "--useCudaGraph" not in strict
    assert "--stronglyTyped" in typed and "--useCudaGraph" in typed and "--fp16" not in typed
    assert "--fp16" in weak and "--stronglyTyped" not in weak
    assert f"--memPoolSize=workspace:{target.workspace_mib}" in strict
    assert "--shapes=input:1x3x8x8" in strict and "--maxShapes=input:1x3x8x8" in strict
    assert "--exportLayerInfo=results/resnet20.fp16.b1.layers.json" in strict
    readme = (out / "README.md").read_text()
    assert "./build_and_bench.sh" in readme and "cosep-deploy report" in readme and "resnet20.int8.b40" in readme


STUB = r"""
import json, os, sys
num = os.environ["FAKE_TRT_NUM"]
banner = "&&&& RUNNING TensorRT.trtexec [TensorRT v%s] # trtexec" % num
if "--help" in sys.argv:
    print(banner)
    print("  --onnx=<file>  --saveEngine=<file>" + ("  --stronglyTyped" if os.environ.get("FAKE_TRT_TYPED") else ""))
    sys.exit(0)
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if "=" in a)
with open(os.environ["FAKE_TRT_ARGS"], "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\n")
if os.environ.get("FAKE_TRT_FAIL", "#") in args["saveEngine"]:
    print("[E] Error[4]: fake failure")
    sys.exit(1)
open(args["saveEngine"], "wb").write(b"ENGINE " + args["saveEngine"].encode())
times = [{"startComputeMs": 0, "endComputeMs": 0.5, "computeMs": 0.5, "latencyMs": 0.5}]
json.dump(times, open(args["exportTimes"], "w"))
json.dump([{"count": 1}, {"name": "conv", "timeMs": 0.4, "averageMs": 0.4}], open(args["exportProfile"], "w"))
json.dump({"Layers": ["conv"], "Bindings": ["input", "output"]}, open(args["exportLayerInfo"], "w"))
print(banner)
print("[I] Selected Device: Orin")
print("[I] Compute Capability: 8.7")
print("[I] Engine built in 1.25 sec.")
print("[I] Throughput: 1000 qps")
print("[I] GPU Compute Time: min = 0.5 ms, max = 0.5 ms, mean = 0.5 ms, median = 0.5 ms")
"""


def _run_bundle(
    bundle: Path, tmp_path: Path, num: str, typed: bool, fail: str = ""
) -> subprocess.CompletedProcess[str]:
    stub = tmp_path / "trtexec"
    stub.write_text(f"#!{sys.executable}\n{STUB}")
    stub.chmod(0o755)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TRTEXEC": str(stub),
        "PYTHON": sys.executable,
        "FAKE_TRT_NUM": num,
        "FAKE_TRT_ARGS": str(tmp_path / "args.jsonl"),
        "FAKE_TRT_FAIL": fail or "#none#",
    }
    if typed:
        env["FAKE_TRT_TYPED"] = "1"
    assert BASH is not None
    return subprocess.run(
        [BASH, str(bundle / "build_and_bench.sh")], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.skipif(BASH is None, reason="needs bash")
@pytest.mark.parametrize(
    ("num", "typed", "family"),
    [("110401", True, "strict"), ("100300", True, "typed"), ("8502", False, "weak")],
)
def test_script_runs_with_the_right_flags_per_version(
    num: str, typed: bool, family: str, tmp_path: Path, variants: dict[str, Path]
) -> None:
    target = get_target("jetson-agx-orin")
    bundle = jetson_bundle_from_onnx(variants, target, tmp_path / "b", model_name="m", batch_sizes=(1, 8))
    proc = _run_bundle(bundle, tmp_path, num, typed)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"flag family: {family}" in proc.stdout
    calls = [json.loads(line) for line in (tmp_path / "args.jsonl").read_text().splitlines()]
    assert len(calls) == 4
    for call in calls:
        int8 = any("int8" in a for a in call)
        if family == "strict":
            assert not {"--fp16", "--int8", "--stronglyTyped", "--useCudaGraph", "--noDataTransfers"} & set(call)
        elif family == "typed":
            assert {"--stronglyTyped", "--useCudaGraph", "--noDataTransfers", "--useSpinWait"} <= set(call)
            assert not {"--fp16", "--int8"} & set(call)
        else:
            assert "--fp16" in call and ("--int8" in call) == int8 and "--stronglyTyped" not in call
    version = {"strict": "11.4.1", "typed": "10.3.0", "weak": "8.5.2"}[family]
    assert f"tensorrt: {version}" in (bundle / "results" / "environment.txt").read_text()
    for ident in ("m.fp16.b1", "m.fp16.b8", "m.int8.b1", "m.int8.b8"):
        manifest = EngineManifest.load(bundle / "engines" / f"{ident}.manifest.json")
        verify_engine_file(manifest, bundle / "engines" / f"{ident}.engine")
        assert (manifest.runtime_version, manifest.device_name, manifest.compute_capability) == (version, "Orin", "8.7")
        assert manifest.build_seconds == 1.25 and manifest.build_options["family"] == family
        assert manifest.backend == "trtexec" and manifest.target == "jetson-agx-orin"
        assert parse_export_times(bundle / "results" / f"{ident}.times.json").compute_ms[0] == 0.5
        assert parse_export_profile(bundle / "results" / f"{ident}.profile.json")[0].name == "conv"
        assert parse_layer_info(bundle / "results" / f"{ident}.layers.json").bindings == ("input", "output")


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_script_reports_failures_and_goes_on(tmp_path: Path, variants: dict[str, Path]) -> None:
    bundle = jetson_bundle_from_onnx(
        variants, get_target("jetson-orin-nano"), tmp_path / "b", model_name="m", batch_sizes=(1,)
    )
    proc = _run_bundle(bundle, tmp_path, "100300", True, fail="m.fp16.b1")
    assert proc.returncode == 1
    assert "failed: m.fp16.b1" in proc.stderr and "fake failure" in proc.stderr
    assert (bundle / "engines" / "m.int8.b1.manifest.json").is_file()  # the other variant still ran
    assert not (bundle / "engines" / "m.fp16.b1.manifest.json").exists()


def test_bundle_refusals(tmp_path: Path, variants: dict[str, Path]) -> None:
    orin = get_target("jetson-agx-orin")
    with pytest.raises(ConfigError, match="onnxruntime"):
        jetson_bundle_from_onnx(variants, get_target("cpu-onnxruntime"), tmp_path / "a", model_name="m")
    with pytest.raises(ConfigError, match="Q/DQ"):
        jetson_bundle_from_onnx({"int8": variants["fp16"]}, orin, tmp_path / "a", model_name="m")
    with pytest.raises(ConfigError, match="mixed-precision"):
        jetson_bundle_from_onnx({"fp16": _onnx(tmp_path / "f.onnx", "fp32")}, orin, tmp_path / "a", model_name="m")
    with pytest.raises(ConfigError, match="fixed batch of 1"):
        jetson_bundle_from_onnx(
            {"fp32": _onnx(tmp_path / "s.onnx", "fp32", batch=1)}, orin, tmp_path / "a", model_name="m"
        )
    with pytest.raises(ConfigError, match="unknown precision"):
        jetson_bundle_from_onnx({"bf16": variants["fp16"]}, orin, tmp_path / "a", model_name="m")
    with pytest.raises(ConfigError, match="model_name"):
        jetson_bundle_from_onnx(variants, orin, tmp_path / "a", model_name="../m")
    assert not (tmp_path / "a").exists()  # nothing half-written
    jetson_bundle_from_onnx(variants, orin, tmp_path / "a", model_name="m", batch_sizes=(1,))
    with pytest.raises(ConfigError, match="already exists"):
        jetson_bundle_from_onnx(variants, orin, tmp_path / "a", model_name="m")
    jetson_bundle_from_onnx(variants, orin, tmp_path / "a", model_name="m", batch_sizes=(2,), overwrite=True)
    assert json.loads((tmp_path / "a" / "manifest.template.json").read_text())["engines"][0]["batch"] == 2


def test_static_batch_onnx_gets_no_shape_flags(tmp_path: Path) -> None:
    static = {"fp32": _onnx(tmp_path / "s.onnx", "fp32", batch=1)}
    out = jetson_bundle_from_onnx(static, get_target("jetson-thor"), tmp_path / "b", model_name="m", batch_sizes=(1,))
    command = json.loads((out / "manifest.template.json").read_text())["engines"][0]["commands"]["strict"]
    assert not any(a.startswith(("--shapes", "--minShapes")) for a in command)
