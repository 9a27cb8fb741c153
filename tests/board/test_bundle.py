"""Jetson deploy bundles: one per target with dense and pruned, complete, flags per family, refusals; the
script's failure handling and a DLA target, run against the strict stand-in trtexec (no TensorRT here)."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from cosep_deploy.board.bundle import FAMILIES, jetson_bundle_from_onnx
from cosep_deploy.errors import ConfigError, ExportError
from cosep_deploy.target_files import load_target
from cosep_deploy.targets import get_target, list_targets
from tests.board.onboard_fixtures import BASH, board_tools, conv_model, model_pair, run_bundle

JETSONS = [t.name for t in list_targets() if t.kind == "jetson"]


@pytest.mark.parametrize("name", JETSONS)
def test_bundle_is_complete_for_every_jetson(name: str, tmp_path: Path) -> None:
    target = get_target(name)
    models = model_pair(tmp_path / "src", ("fp16", "int8"))
    out = jetson_bundle_from_onnx(models, target, tmp_path / "bundle", batch_sizes=(8, 1))
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert [f for f in files if not f.startswith("cosep_onboard/")] == [
        "README.md",
        "build_and_bench.sh",
        "bundle.json",
        "onnx/dense.fp16.onnx",
        "onnx/dense.int8.onnx",
        "onnx/pruned.fp16.onnx",
        "onnx/pruned.int8.onnx",
        "target.toml",
    ]
    assert {"cosep_onboard/__main__.py", "cosep_onboard/run.py", "cosep_onboard/parse.py"} <= set(files)
    assert not any("__pycache__" in f for f in files)
    assert (out / "onnx" / "pruned.int8.onnx").read_bytes() == models["pruned"]["int8"].read_bytes()
    assert load_target(out / "target.toml") == target
    script = out / "build_and_bench.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    if BASH:
        subprocess.run([BASH, "-n", str(script)], check=True)
    plan = json.loads((out / "bundle.json").read_text())
    assert [e["id"] for e in plan["engines"]] == [
        f"{m}.{p}.b{b}" for m in ("dense", "pruned") for p in ("fp16", "int8") for b in (1, 8)
    ]
    assert plan["target"]["tensorrt_releases"] == list(target.tensorrt_releases)
    assert plan["target"]["max_power_modes"] == list(target.power.max_modes)
    entry = plan["engines"][0]
    assert entry["manifest"]["engine_sha256"] is None and entry["manifest"]["target"] == name
    cmds = {fam: entry["commands"][fam] for fam in FAMILIES}
    strict, typed, weak86, weak85 = (cmds[f]["build"] for f in ("strict", "typed", "weak86", "weak85"))
    assert "--fp16" not in strict and "--stronglyTyped" not in strict and "--skipInference" in strict
    assert "--stronglyTyped" in typed and "--fp16" not in typed
    assert "--fp16" in weak86 and "--skipInference" in weak86
    assert "--fp16" in weak85 and "--skipInference" not in weak85 and "--iterations=1" in weak85
    assert f"--memPoolSize=workspace:{target.workspace_mib}" in strict
    assert "--minShapes=input:1x3x16x16" in strict and "--maxShapes=input:1x3x16x16" in strict
    assert "--separateProfileRun" not in cmds["strict"]["profile"]
    assert "--separateProfileRun" in cmds["typed"]["profile"]
    assert "--exportTimes=@TIMES@" in cmds["typed"]["bench"] and "--useCudaGraph" in cmds["typed"]["bench"]
    readme = (out / "README.md").read_text()
    assert "./build_and_bench.sh" in readme and "cosep-deploy collect" in readme and "pruned.int8.b8" in readme


def test_bundle_refusals(tmp_path: Path) -> None:
    orin = get_target("jetson-agx-orin")
    models = model_pair(tmp_path / "src", ("fp16",))
    fp32 = conv_model(tmp_path / "f32.onnx", 8, "fp32")
    with pytest.raises(ConfigError, match="onnxruntime"):
        jetson_bundle_from_onnx(models, get_target("cpu-onnxruntime"), tmp_path / "a")
    with pytest.raises(ConfigError, match="baseline"):
        jetson_bundle_from_onnx({"pruned": models["pruned"]}, orin, tmp_path / "a")
    with pytest.raises(ConfigError, match="Q/DQ"):
        jetson_bundle_from_onnx({"dense": {"int8": models["dense"]["fp16"]}}, orin, tmp_path / "a")
    with pytest.raises(ConfigError, match="mixed-precision"):
        jetson_bundle_from_onnx({"dense": {"fp16": fp32}}, orin, tmp_path / "a")
    with pytest.raises(ConfigError, match="unknown precision"):
        jetson_bundle_from_onnx({"dense": {"bf16": fp32}}, orin, tmp_path / "a")
    with pytest.raises(ConfigError, match="model name"):
        jetson_bundle_from_onnx({"dense": {"fp32": fp32}, "../m": {"fp32": fp32}}, orin, tmp_path / "a")
    with pytest.raises(ConfigError, match="even number"):
        jetson_bundle_from_onnx(models, orin, tmp_path / "a", rounds=3)
    opset18 = conv_model(tmp_path / "o18.onnx", 8, "fp32", opset=18)
    with pytest.raises(ExportError, match=r"TensorRT 8\.5\.2: opset 18"):
        jetson_bundle_from_onnx({"dense": {"fp32": opset18}}, orin, tmp_path / "a")
    jetson_bundle_from_onnx({"dense": {"fp32": opset18}}, get_target("jetson-thor"), tmp_path / "thor")  # 10.13+
    assert not (tmp_path / "a").exists()  # nothing half-written
    jetson_bundle_from_onnx(models, orin, tmp_path / "a", batch_sizes=(1,))
    with pytest.raises(ConfigError, match="already exists"):
        jetson_bundle_from_onnx(models, orin, tmp_path / "a")
    jetson_bundle_from_onnx(models, orin, tmp_path / "a", batch_sizes=(2,), overwrite=True)
    assert json.loads((tmp_path / "a" / "bundle.json").read_text())["engines"][0]["batch"] == 2


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_failed_build_is_reported_and_the_rest_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator 8.5's parser lacks: that engine fails with the parser's message, the others still run."""
    import onnx
    from onnx import helper

    models = model_pair(tmp_path / "src", ("fp32",))
    bad = onnx.load(models["pruned"]["fp32"])
    bad.graph.node.append(helper.make_node("IsInf", ["output"], ["unused"]))  # not in 8.5's parser (8.5-GA docs)
    onnx.save(bad, models["pruned"]["fp32"])
    target = get_target("jetson-agx-orin")
    with pytest.raises(ExportError, match="IsInf"):
        jetson_bundle_from_onnx(models, target, tmp_path / "b", batch_sizes=(1,))
    # the host check refuses it; a bundle written without the check (an older cosep-deploy) fails on the board
    from cosep_deploy.board import bundle as bundle_module

    monkeypatch.setattr(bundle_module, "require_compatible", lambda *a, **k: [])
    bundle = jetson_bundle_from_onnx(models, target, tmp_path / "b", batch_sizes=(1,))
    proc = run_bundle(bundle, board_tools(tmp_path, "8.5.2"))
    assert proc.returncode == 1
    assert "failed: pruned.fp32.b1" in proc.stderr and "No importer registered for op: IsInf" in proc.stdout
    assert (bundle / "engines" / "dense.fp32.b1.manifest.json").is_file()
    assert not (bundle / "engines" / "pruned.fp32.b1.manifest.json").exists()
    assert json.loads((bundle / "results" / "board.json").read_text())["failed"] == ["pruned.fp32.b1"]


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_dla_target_runs_with_use_dla_core_and_static_shapes(tmp_path: Path) -> None:
    text = get_target("jetson-agx-orin").to_toml().replace("use_dla = false", "use_dla = true")
    (tmp_path / "dla.toml").write_text(text.replace('name = "jetson-agx-orin"', 'name = "orin-dla"'))
    target = load_target(tmp_path / "dla.toml")
    bundle = jetson_bundle_from_onnx(model_pair(tmp_path / "src", ("fp16",)), target, tmp_path / "b", batch_sizes=(2,))
    plan = json.loads((bundle / "bundle.json").read_text())
    for entry in plan["engines"]:
        for cmds in entry["commands"].values():
            assert "--useDLACore=0" in cmds["build"] and "--useDLACore=0" in cmds["bench"]
    proc = run_bundle(bundle, board_tools(tmp_path, "10.3.0", dla_cores=2))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    manifest = json.loads((bundle / "engines" / "pruned.fp16.b2.manifest.json").read_text())
    assert manifest["dla_core"] == 0
    proc = run_bundle(bundle, board_tools(tmp_path / "nodla", "10.3.0", dla_cores=0))
    assert proc.returncode == 1 and "DLA" in proc.stdout


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_release_outside_the_target_range_is_refused(tmp_path: Path) -> None:
    bundle = jetson_bundle_from_onnx(
        model_pair(tmp_path / "src", ("fp16",)), get_target("jetson-orin-nano"), tmp_path / "b", batch_sizes=(1,)
    )
    proc = run_bundle(bundle, board_tools(tmp_path, "11.4.1"))
    assert proc.returncode == 1 and "outside jetson-orin-nano's range" in proc.stderr
    (bundle / "onnx" / "dense.fp16.onnx").write_bytes(b"changed")
    proc = run_bundle(bundle, board_tools(tmp_path, "10.3.0"))
    assert proc.returncode == 1 and "changed since the bundle was written" in proc.stderr


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_python_older_than_38_is_refused_with_a_message(tmp_path: Path) -> None:
    import glob

    old = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.7*/bin/python3.7")))
    if not old:
        pytest.skip("no Python 3.7 interpreter here")
    bundle = jetson_bundle_from_onnx(
        model_pair(tmp_path / "src", ("fp16",)), get_target("jetson-xavier-nx"), tmp_path / "b", batch_sizes=(1,)
    )
    env = {**board_tools(tmp_path, "8.5.2"), "PYTHON": old[0]}
    proc = run_bundle(bundle, env)
    assert proc.returncode == 1 and "older than Python 3.8" in proc.stderr


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_dla_int8_is_refused_on_8x_with_the_reason(tmp_path: Path) -> None:
    text = get_target("jetson-agx-orin").to_toml().replace("use_dla = false", "use_dla = true")
    (tmp_path / "dla.toml").write_text(text.replace('name = "jetson-agx-orin"', 'name = "orin-dla"'))
    target = load_target(tmp_path / "dla.toml")
    models = model_pair(tmp_path / "src", ("fp16", "int8"))
    bundle = jetson_bundle_from_onnx(models, target, tmp_path / "b", batch_sizes=(1,))
    proc = run_bundle(bundle, board_tools(tmp_path, "8.5.2", dla_cores=2))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "[dense.int8.b1] not built: TensorRT 8.x cannot run explicitly quantized (Q/DQ) INT8" in proc.stdout
    result = json.loads((bundle / "results" / "board.json").read_text())
    assert set(result["skipped"]) == {"dense.int8.b1", "pruned.int8.b1"}
    assert [p["precision"] for p in result["pairs"]] == ["fp16"]
    calls = (tmp_path / "trtexec_calls.jsonl").read_text()
    assert "int8.onnx" not in calls


# JetPack's tensorrt bindings as their Python API documents them: Logger(Logger.WARNING), Builder(logger),
# Builder.num_DLA_cores, tensorrt.__version__ with four components.
FAKE_TENSORRT = """
__version__ = "10.3.0.30"
class Logger:
    WARNING = 2
    def __init__(self, severity):
        self.severity = severity
class Builder:
    def __init__(self, logger):
        assert isinstance(logger, Logger)
    num_DLA_cores = {cores}
"""


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_jetpack_bindings_give_the_package_version_and_dla_cores(tmp_path: Path) -> None:
    text = get_target("jetson-orin-nx").to_toml().replace("use_dla = false", "use_dla = true")
    (tmp_path / "dla.toml").write_text(text.replace('name = "jetson-orin-nx"', 'name = "nx-dla"'))
    bundle = jetson_bundle_from_onnx(
        model_pair(tmp_path / "src", ("fp16",)), load_target(tmp_path / "dla.toml"), tmp_path / "b", batch_sizes=(1,)
    )
    for cores, code in ((0, 1), (1, 0)):
        site = tmp_path / f"site{cores}"
        site.mkdir()
        (site / "tensorrt.py").write_text(FAKE_TENSORRT.format(cores=cores))
        env = {**board_tools(tmp_path / f"t{cores}", "10.3.0", dla_cores=max(cores, 1)), "PYTHONPATH": str(site)}
        proc = run_bundle(bundle, env)
        assert proc.returncode == code, proc.stdout[-1500:] + proc.stderr[-1500:]
        if cores == 0:
            assert "this board has 0 DLA cores" in proc.stderr
        else:
            result = json.loads((bundle / "results" / "board.json").read_text())
            assert result["tensorrt_bindings"] == {"package": "10.3.0.30", "dla_cores": 1}
            manifest = json.loads((bundle / "engines" / "dense.fp16.b1.manifest.json").read_text())
            assert manifest["runtime_version"] == "10.3.0.30"
