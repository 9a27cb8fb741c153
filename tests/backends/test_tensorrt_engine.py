"""Engine builds and runs against the contract-faithful TensorRT and cuda-python doubles (``trt_double.py``).

Each test gets a fresh double (one TensorRT release on one GPU). The double enforces TensorRT's documented
contracts and computes an engine's outputs with ONNX Runtime from the bytes in "device" memory, so these tests
check results against ONNX Runtime, not the calls our code happens to make. ``tools/trt_mutations.py`` plants
contract bugs in a copy of the package and proves this file (with the others it names) catches each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cosep_deploy.artifacts import sha256_file
from cosep_deploy.backends.base import TimedRun
from cosep_deploy.backends.tensorrt.engine import engine_from_onnx
from cosep_deploy.backends.tensorrt.plan import TensorRTBuildConfig
from cosep_deploy.backends.tensorrt.runner import TensorRTRunner
from cosep_deploy.engines.manifest import EngineManifest, manifest_path_for
from cosep_deploy.errors import ConfigError, EngineBuildError, EngineLoadError, TargetMismatchError
from tests.backends.trt_double import RELEASES, Gpu, install_double

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16


def conv_onnx(path: Path, *, batch: int | str = "batch", io: int = F32, qdq: bool = False, opset: int = 17) -> Path:
    """input [batch, 2, 5, 5] -> Conv(3 maps) -> Relu -> output; ``io=F16`` gives fp16 inputs and outputs (and
    fp16 weights), ``qdq`` puts a Q/DQ pair on the input."""
    rng = np.random.default_rng(0)
    np_dtype = np.float16 if io == F16 else np.float32
    w = helper.make_tensor(
        "w", io, [3, 2, 3, 3], rng.standard_normal((3, 2, 3, 3)).astype(np_dtype).tobytes(), raw=True
    )
    inits = [w]
    nodes = []
    src = "input"
    if qdq:
        inits += [helper.make_tensor("s", F32, [], [0.05]), helper.make_tensor("z", TensorProto.INT8, [], [0])]
        nodes += [
            helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
        ]
        src = "dq"
    nodes += [
        helper.make_node("Conv", [src, "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["output"]),
    ]
    x = helper.make_tensor_value_info("input", io, [batch, 2, 5, 5])
    y = helper.make_tensor_value_info("output", io, [batch, 3, 5, 5])
    graph = helper.make_graph(nodes, "conv", [x], [y], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8), path)
    return path


def reference(onnx_file: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"input": x})[0])


def images(n: int, dtype: Any = np.float32) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, 2, 5, 5)).astype(dtype)


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> Gpu:
    return install_double(monkeypatch, "10.13")[2]


def test_build_then_run_matches_onnxruntime(gpu: Gpu, tmp_path: Path) -> None:
    src = conv_onnx(tmp_path / "m.onnx")
    cfg = TensorRTBuildConfig(
        precision="fp32", batch=(1, 2, 4), builder_optimization_level=5, target="dgpu-ampere-plus"
    )
    messages: list[str] = []
    manifest = engine_from_onnx(src, tmp_path / "out" / "m.engine", cfg, progress=messages.append)
    assert EngineManifest.load(manifest_path_for(tmp_path / "out" / "m.engine")) == manifest
    assert (manifest.device_name, manifest.compute_capability) == ("NVIDIA Double GPU", "9.0")
    assert (manifest.device_sm_count, manifest.device_memory_bytes) == (132, 80 << 30)
    assert manifest.runtime_version == manifest.tensorrt_package_version == RELEASES["10.13"]
    assert manifest.build_options["network_flags"] == ["STRONGLY_TYPED"] and any("building" in m for m in messages)
    with TensorRTRunner(tmp_path / "out" / "m.engine") as runner:
        info = runner.info()
        assert (info.device, info.settings["cuda_api"]) == ("NVIDIA Double GPU", "cuda-python")
        for x in (images(1), images(3), images(4).astype(np.float64)):
            np.testing.assert_allclose(
                runner.infer({"input": x})["output"], reference(src, x.astype(np.float32)), rtol=1e-5
            )
        assert runner.time_once({"input": images(2)}) == TimedRun(0.0015, includes_copies=False)
        assert runner.memory() == {
            "engine_file_bytes": (tmp_path / "out" / "m.engine").stat().st_size,
            "context_device_memory_bytes": 3 << 20,
        }
        with pytest.raises(ConfigError, match=r"outside the engine's profile \(1, 2, 5, 5\) \.\. \(4, 2, 5, 5\)"):
            runner.infer({"input": images(5)})
        with pytest.raises(ConfigError, match="engine inputs are"):
            runner.infer({"x": images(1)})
    assert gpu.allocations == {}  # every buffer freed on exit
    with pytest.raises(EngineLoadError, match="not active"):
        runner.infer({"input": images(1)})


def test_fp16_io_engine_reads_and_writes_fp16(gpu: Gpu, tmp_path: Path) -> None:
    src = conv_onnx(tmp_path / "h.onnx", io=F16)
    engine_from_onnx(src, tmp_path / "h.engine", TensorRTBuildConfig(precision="fp16", batch=(1, 2, 4)))
    x = images(3)
    with TensorRTRunner(tmp_path / "h.engine") as runner:
        out = runner.infer({"input": x})["output"]
    assert out.dtype == np.float16
    np.testing.assert_allclose(
        out.astype(np.float32), reference(src, x.astype(np.float16)).astype(np.float32), rtol=1e-3
    )


@pytest.mark.parametrize("static", [False, True])
def test_cuda_graph_captured_thread_local_once_and_replayed(gpu: Gpu, tmp_path: Path, static: bool) -> None:
    src = conv_onnx(tmp_path / "m.onnx", batch=2 if static else "batch")
    cfg = TensorRTBuildConfig(precision="fp32", batch=None if static else (1, 2, 4))
    engine_from_onnx(src, tmp_path / "m.engine", cfg)
    x = images(2)
    with TensorRTRunner(tmp_path / "m.engine", cuda_graph=True) as runner:
        for _ in range(3):
            np.testing.assert_allclose(runner.infer({"input": x})["output"], reference(src, x), rtol=1e-5)
        assert (gpu.capture_modes, gpu.graph_launches) == (["cudaStreamCaptureModeThreadLocal"], 3)
        runner.time_once({"input": x})
        assert len(gpu.capture_modes) == 1  # same shapes and buffers: no recapture
        if not static:
            runner.time_once({"input": images(1)})  # new shape: recaptured outside the timed region
            assert len(gpu.capture_modes) == 2


@pytest.mark.parametrize("release", ["8.5", "8.6", "10.3", "11"])
def test_build_and_run_per_release(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, release: str) -> None:
    trt, _, _ = install_double(monkeypatch, release)
    typed = release not in ("8.5", "8.6")
    src = conv_onnx(tmp_path / "m.onnx", io=F16 if typed else F32)
    cfg = TensorRTBuildConfig(precision="fp16", batch=(1, 2, 4), hardware_compatibility=release != "8.5")
    manifest = engine_from_onnx(src, tmp_path / "m.engine", cfg)
    config = gpu_config(trt)
    assert manifest.build_options["network_flags"] == (["STRONGLY_TYPED"] if typed else ["EXPLICIT_BATCH"])
    assert [f.name for f in config._flags] == ([] if typed else ["FP16"])
    assert manifest.runtime_version == RELEASES[release]
    x = images(2, np.float16 if typed else np.float32)
    with TensorRTRunner(tmp_path / "m.engine") as runner:
        np.testing.assert_allclose(runner.infer({"input": x})["output"], reference(src, x), rtol=1e-3)
        memory = runner.memory()
    assert memory is not None and memory["context_device_memory_bytes"] == (1 << 20 if release[0] == "8" else 3 << 20)


def gpu_config(trt: Any) -> Any:
    """The builder config of the last build on this double."""
    return trt.IBuilderConfig._world.configs[-1]


def test_int8_qdq_build_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    trt, _, _ = install_double(monkeypatch, "8.6")
    src = conv_onnx(tmp_path / "q.onnx", qdq=True)
    engine_from_onnx(src, tmp_path / "q.engine", TensorRTBuildConfig(precision="int8", batch=(1, 2, 4)))
    assert [f.name for f in gpu_config(trt)._flags] == ["INT8", "FP16"]
    x = images(2)
    with TensorRTRunner(tmp_path / "q.engine") as runner:
        np.testing.assert_allclose(runner.infer({"input": x})["output"], reference(src, x), rtol=1e-5, atol=1e-5)


def test_dla_build_and_runtime_core(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    trt, _, _ = install_double(monkeypatch, "10.3", Gpu(name="Orin", capability=(8, 7), sm_count=16, dla_cores=2))
    src = conv_onnx(tmp_path / "m.onnx", io=F16)
    cfg = TensorRTBuildConfig(precision="fp16", dla_core=1, batch=(2, 2, 2))
    manifest = engine_from_onnx(src, tmp_path / "m.engine", cfg)
    config = gpu_config(trt)
    assert (config.default_device_type.name, config.DLA_core, manifest.dla_core) == ("DLA", 1, 1)
    assert [f.name for f in config._flags] == ["GPU_FALLBACK"]
    with TensorRTRunner(tmp_path / "m.engine") as runner:
        assert runner.info().settings["dla_core"] == 1
        np.testing.assert_allclose(
            runner.infer({"input": images(2, np.float16)})["output"], reference(src, images(2, np.float16)), rtol=1e-3
        )
    assert trt.Runtime._world.runtimes[-1].DLA_core == 1
    with pytest.raises(EngineBuildError, match="2 DLA core"):
        engine_from_onnx(src, tmp_path / "m.engine", TensorRTBuildConfig(precision="fp16", dla_core=2, batch=(2, 2, 2)))


def test_timing_cache_loaded_saved_and_foreign_replaced(gpu: Gpu, tmp_path: Path) -> None:
    src = conv_onnx(tmp_path / "m.onnx", batch=1)
    cache = tmp_path / "timing.cache"
    cfg = TensorRTBuildConfig(precision="fp32", timing_cache=cache)
    engine_from_onnx(src, tmp_path / "a.engine", cfg)
    first = cache.read_bytes()
    engine_from_onnx(src, tmp_path / "b.engine", cfg)
    assert cache.read_bytes().startswith(first)  # loaded, extended, saved back
    cache.write_bytes(b'{"version": "10.3.0.30", "device": "Orin"}\nold')
    messages: list[str] = []
    engine_from_onnx(src, tmp_path / "c.engine", cfg, progress=messages.append)
    assert any("another device" in m for m in messages) and b"Orin" not in cache.read_bytes()


def test_build_failures_carry_tensorrt_messages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    install_double(monkeypatch, "8.6")
    with pytest.raises(EngineBuildError, match="opsets up to 17"):
        engine_from_onnx(
            conv_onnx(tmp_path / "m.onnx", opset=18, batch=1),
            tmp_path / "m.engine",
            TensorRTBuildConfig(precision="fp32"),
        )
    install_double(monkeypatch, "10.3", Gpu(driver_ok=False))
    with pytest.raises(EngineBuildError, match="CUDA initialization failure with error: 35"):
        engine_from_onnx(
            conv_onnx(tmp_path / "m.onnx", batch=1), tmp_path / "m.engine", TensorRTBuildConfig(precision="fp32")
        )
    assert not (tmp_path / "m.engine").exists()


def test_runner_refuses_engines_from_another_device_or_release(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    agx = Gpu(name="Orin", capability=(8, 7), sm_count=16, memory_bytes=64 << 30)
    install_double(monkeypatch, "10.3", agx)
    engine_from_onnx(
        conv_onnx(tmp_path / "m.onnx", batch=1), tmp_path / "m.engine", TensorRTBuildConfig(precision="fp32")
    )
    nano = Gpu(name="Orin", capability=(8, 7), sm_count=8, memory_bytes=8 << 30)  # same name and capability
    install_double(monkeypatch, "10.3", nano)
    with (
        pytest.raises(TargetMismatchError, match="SM count 16 when built, 8 here"),
        TensorRTRunner(tmp_path / "m.engine"),
    ):
        pass
    trt, _, _ = install_double(monkeypatch, "10.13", agx)
    with pytest.raises(TargetMismatchError, match=r"TensorRT 10\.3\.0\.30"), TensorRTRunner(tmp_path / "m.engine"):
        pass
    assert trt.Runtime._world.runtimes == []  # refused before deserialisation
    # forced past the manifest check, TensorRT itself refuses a plan of another release
    with (
        pytest.raises(EngineLoadError, match=r"expecting library version 10\.13\.0\.35 got 10\.3\.0\.30"),
        TensorRTRunner(tmp_path / "m.engine", check_target=False),
    ):
        pass
    assert sha256_file(tmp_path / "m.engine")  # untouched
