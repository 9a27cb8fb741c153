"""``cached_engine_from_onnx``: the TensorRT build wired to the engine cache.

The cache logic itself is tested with a real build step in ``tests/engines/test_engine_cache_build.py``; here
only the wiring is checked, on the TensorRT and cuda-python doubles the other engine tests use
(``trt_double.py``; TensorRT cannot run on this machine): the key it computes, that a hit skips TensorRT
entirely, that the manifest carries the requested names, and that an unidentifiable GPU bypasses the cache.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from cosep_deploy.artifacts import sha256_file
from cosep_deploy.backends.tensorrt.cache import cached_engine_from_onnx, tensorrt_cache_key
from cosep_deploy.backends.tensorrt.cuda import CudaError, DeviceInfo, device_info
from cosep_deploy.backends.tensorrt.identity import device_identity
from cosep_deploy.backends.tensorrt.plan import TensorRTBuildConfig
from cosep_deploy.deps import is_available
from cosep_deploy.engines.manifest import EngineCache, EngineManifest, manifest_path_for
from cosep_deploy.errors import ConfigError, MissingDependencyError
from tests.backends.trt_double import install_double, make_double

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

GPU = DeviceInfo("NVIDIA Double GPU", "9.0", 132, 80 << 30)


def _relu_onnx(path: Path) -> Path:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "relu", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    trt: types.ModuleType = install_double(monkeypatch, "10.13")[0]
    return trt


def _builds(trt: types.ModuleType) -> int:
    """How many builder configs TensorRT created: one per build."""
    return len(trt.IBuilderConfig._world.configs)


def test_second_build_comes_from_the_cache(fake_trt: types.ModuleType, tmp_path: Path) -> None:
    src = _relu_onnx(tmp_path / "dense.onnx")
    config = TensorRTBuildConfig(precision="fp32", workspace_mib=64, batch=(1, 2, 4), target="dgpu-ampere-plus")
    cache = EngineCache(tmp_path / "cache")
    messages: list[str] = []
    first = cached_engine_from_onnx(src, tmp_path / "a" / "dense.engine", config, cache=cache, device=GPU)
    assert not first.hit and _builds(fake_trt) == 1  # TensorRT's builder ran
    identity = device_identity(GPU, fake_trt.__version__)  # off Jetson: no board model or power mode
    assert (identity.board_model, identity.tensorrt_package_version) == ("", fake_trt.__version__)
    assert first.key == tensorrt_cache_key(sha256_file(src), fake_trt.__version__, identity, config)

    copy_src = tmp_path / "elsewhere" / "pruned.onnx"  # same bytes under another name, another target label
    copy_src.parent.mkdir()
    copy_src.write_bytes(src.read_bytes())
    relabelled = TensorRTBuildConfig(precision="fp32", workspace_mib=64, batch=(1, 2, 4), target="my-gpu.toml")
    engine = tmp_path / "b" / "pruned.engine"
    second = cached_engine_from_onnx(copy_src, engine, relabelled, cache=cache, device=GPU, progress=messages.append)
    assert second.hit and second.key == first.key
    assert _builds(fake_trt) == 1 and len(fake_trt.IBuilderConfig._world.parsed) == 1  # no parse, no build
    assert engine.read_bytes() == (tmp_path / "a" / "dense.engine").read_bytes()
    manifest = EngineManifest.load(manifest_path_for(engine))
    assert (manifest.engine_file, manifest.onnx_file, manifest.target) == (
        "pruned.engine",
        "pruned.onnx",
        "my-gpu.toml",
    )
    assert any("reused" in m for m in messages)

    other_gpu = cached_engine_from_onnx(
        src, tmp_path / "c" / "dense.engine", config, cache=cache, device=DeviceInfo("NVIDIA Double GPU", "8.9")
    )
    assert not other_gpu.hit and _builds(fake_trt) == 2


def test_unidentified_gpu_builds_without_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # TensorRT (the double) answers, but no CUDA binding of this machine reaches a GPU
    monkeypatch.setitem(sys.modules, "tensorrt", make_double("10.13")[0])
    try:
        device_info(0)
    except (MissingDependencyError, CudaError):
        pass  # the expected case on a machine without an NVIDIA driver
    else:
        pytest.skip("the GPU can be identified here")
    src = _relu_onnx(tmp_path / "m.onnx")
    messages: list[str] = []
    config = TensorRTBuildConfig(precision="fp32", batch=(1, 2, 4))
    built = cached_engine_from_onnx(
        src, tmp_path / "m.engine", config, cache=EngineCache(tmp_path / "cache"), progress=messages.append
    )
    assert built.key is None and not built.hit and (tmp_path / "m.engine").is_file()
    assert not (tmp_path / "cache").exists()
    assert any("without the engine cache" in m for m in messages)


def test_missing_onnx_is_refused_before_tensorrt(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        cached_engine_from_onnx(
            tmp_path / "nope.onnx", tmp_path / "m.engine", TensorRTBuildConfig(), cache=EngineCache(tmp_path)
        )


@pytest.mark.skipif(is_available("tensorrt"), reason="TensorRT is installed here")
def test_without_tensorrt_the_error_names_the_install(tmp_path: Path) -> None:
    src = _relu_onnx(tmp_path / "m.onnx")
    with pytest.raises(MissingDependencyError, match="cosep-deploy\\[tensorrt\\]"):
        cached_engine_from_onnx(src, tmp_path / "m.engine", TensorRTBuildConfig(), cache=EngineCache(tmp_path / "c"))
