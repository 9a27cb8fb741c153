"""The engine cache at build time: lookup-or-build-then-store with a real build step that writes real files.

:func:`build_with_cache` takes the build step as a callable; here it is a plain function that writes an
engine file and its manifest exactly as :func:`engine_from_onnx` does (TensorRT itself cannot run here), and
counts its calls, so every test can tell a hit from a build. TensorRT's own key (:func:`tensorrt_cache_key`)
is tested on real :class:`TensorRTBuildConfig` objects; the real-GPU round trip is marked and skips here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cosep_deploy.backends.tensorrt.cache import tensorrt_cache_key
from cosep_deploy.backends.tensorrt.cuda import DeviceInfo
from cosep_deploy.backends.tensorrt.identity import DeviceIdentity
from cosep_deploy.backends.tensorrt.plan import TensorRTBuildConfig
from cosep_deploy.deps import is_available
from cosep_deploy.engines.manifest import (
    CACHE_ENV_VAR,
    CachedBuild,
    EngineCache,
    EngineManifest,
    build_with_cache,
    default_engine_cache_root,
    engine_cache_for,
    engine_cache_key,
    manifest_path_for,
    verify_engine_file,
)
from cosep_deploy.errors import ConfigError, EngineBuildError
from tests.engines.fake_engines import ORIN_FP16, write_engine

ONNX_SHA = ORIN_FP16["onnx_sha256"]
ORIN = DeviceInfo("Orin", "8.7")


class CountingBuild:
    """A build step: writes ``payload`` as the engine and a manifest beside it, and counts its calls."""

    def __init__(self, payload: bytes = b"serialized engine v1", *, fail: bool = False) -> None:
        self.payload, self.fail, self.calls = payload, fail, 0

    def __call__(self, engine: Path) -> EngineManifest:
        self.calls += 1
        if self.fail:
            raise EngineBuildError("the builder ran out of workspace")
        return write_engine(
            engine, self.payload, onnx_file="dense.fp16.onnx", build_options={"workspace_mib": 4096}, build_seconds=95.0
        )


def _key(options: dict[str, object] | None = None, device: str = "Orin (sm 8.7)") -> str:
    return engine_cache_key(ONNX_SHA, "10.3.0.30", device, options or {"precision": "fp16"})


def _run(
    build: Callable[[Path], EngineManifest],
    engine: Path,
    cache: EngineCache | None,
    key: str,
    labels: dict[str, str] | None = None,
) -> tuple[CachedBuild, list[str]]:
    messages: list[str] = []
    result = build_with_cache(build, engine, cache=cache, key=key, labels=labels, progress=messages.append)
    return result, messages


def test_miss_builds_and_stores_then_hit_copies_without_building(tmp_path: Path) -> None:
    cache, build, key = EngineCache(tmp_path / "cache"), CountingBuild(), _key()
    first, messages = _run(build, tmp_path / "run1" / "dense.fp16.engine", cache, key)
    assert build.calls == 1 and not first.hit and first.key == key
    assert cache.lookup(key) is not None and any("stored in the engine cache" in m for m in messages)

    engine = tmp_path / "run2" / "engines" / "pruned.fp16.engine"
    labels = {"onnx_file": "pruned.fp16.onnx", "target": "my-orin.toml"}
    second, messages = _run(build, engine, cache, key, labels)
    assert build.calls == 1 and second.hit
    assert any("reused the engine cached" in m and "no build" in m for m in messages)
    assert engine.read_bytes() == b"serialized engine v1"
    manifest = EngineManifest.load(manifest_path_for(engine))
    assert manifest == second.manifest
    assert (manifest.engine_file, manifest.onnx_file, manifest.target) == ("pruned.fp16.engine", *labels.values())
    # what the engine is and where it runs comes from the build that filled the entry
    assert (manifest.runtime_version, manifest.device_name, manifest.build_seconds) == ("10.3.0.30", "Orin", 95.0)
    verify_engine_file(manifest, engine)
    assert sorted(p.name for p in engine.parent.iterdir()) == ["pruned.fp16.engine", "pruned.fp16.manifest.json"]


def test_a_damaged_entry_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    cache, build, key = EngineCache(tmp_path / "cache"), CountingBuild(), _key()
    _run(build, tmp_path / "a.engine", cache, key)
    cached = tmp_path / "cache" / key / EngineCache.ENGINE_NAME
    cached.write_bytes(b"serialized engine v2")  # same size, other bytes: sha256 mismatch
    result, _ = _run(build, tmp_path / "b.engine", cache, key)
    assert build.calls == 2 and not result.hit
    assert cached.read_bytes() == b"serialized engine v1"  # the rebuilt engine replaced the damaged one
    result, _ = _run(build, tmp_path / "c.engine", cache, key)
    assert build.calls == 2 and result.hit

    (tmp_path / "cache" / key / EngineCache.MANIFEST_NAME).write_text("{not json")
    result, _ = _run(build, tmp_path / "d.engine", cache, key)
    assert build.calls == 3 and not result.hit
    assert EngineCache(tmp_path / "cache").lookup(key) is not None


def test_truncated_entry_never_reaches_the_output(tmp_path: Path) -> None:
    cache, build, key = EngineCache(tmp_path / "cache"), CountingBuild(), _key()
    _run(build, tmp_path / "a.engine", cache, key)
    (tmp_path / "cache" / key / EngineCache.ENGINE_NAME).write_bytes(b"serialized")
    out = tmp_path / "out" / "m.engine"
    _run(build, out, cache, key)
    assert out.read_bytes() == b"serialized engine v1" and build.calls == 2
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_different_options_or_device_are_different_entries(tmp_path: Path) -> None:
    cache, build = EngineCache(tmp_path / "cache"), CountingBuild()
    keys = [
        _key(),
        _key({"precision": "int8"}),
        _key(device="Orin (sm 8.6)"),
        _key(device="NVIDIA H100 80GB HBM3 (sm 9.0)"),
    ]
    assert len(set(keys)) == len(keys)
    for i, key in enumerate(keys):
        result, _ = _run(build, tmp_path / f"e{i}.engine", cache, key)
        assert not result.hit
    assert build.calls == len(keys)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(keys)


def test_no_cache_always_builds(tmp_path: Path) -> None:
    build = CountingBuild()
    for _ in range(2):
        result, _ = _run(build, tmp_path / "a.engine", None, _key())
        assert not result.hit and result.key is None
    assert build.calls == 2


def test_a_failed_build_stores_nothing(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path / "cache")
    with pytest.raises(EngineBuildError, match="workspace"):
        _run(CountingBuild(fail=True), tmp_path / "a.engine", cache, _key())
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_costs_the_reuse_not_the_build(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache's parent should be")
    result, messages = _run(CountingBuild(), tmp_path / "a.engine", EngineCache(blocker / "cache"), _key())
    assert not result.hit and (tmp_path / "a.engine").is_file()
    assert any("could not be stored in the engine cache" in m for m in messages)


def _identity(**changes: Any) -> DeviceIdentity:
    base = DeviceIdentity("Orin", "8.7", None, None, "", "", "")
    return dataclasses.replace(base, **changes)


def test_tensorrt_key_covers_what_changes_the_engine_and_nothing_else(tmp_path: Path) -> None:
    base = TensorRTBuildConfig(precision="fp16", workspace_mib=4096, batch=(1, 8, 40), target="jetson-agx-orin")
    key = tensorrt_cache_key(ONNX_SHA, "10.3.0.30", ORIN, base)
    # labels and the timing cache's location do not change the engine's bytes
    relabelled = dataclasses.replace(base, target="my-board.toml", timing_cache=tmp_path / "timing.cache")
    assert tensorrt_cache_key(ONNX_SHA, "10.3.0.30", ORIN, relabelled) == key
    others = [
        tensorrt_cache_key("cd" * 32, "10.3.0.30", ORIN, base),
        tensorrt_cache_key(ONNX_SHA, "10.3.0.31", ORIN, base),
        tensorrt_cache_key(ONNX_SHA, "10.3.0.30", DeviceInfo("Orin", "8.6"), base),
        tensorrt_cache_key(ONNX_SHA, "10.3.0.30", DeviceInfo("NVIDIA A100-SXM4-40GB", "8.7"), base),
        # same name and capability, another module: AGX Orin 64 GB (16 SMs) vs Orin Nano 8 GB (8 SMs)
        tensorrt_cache_key(ONNX_SHA, "10.3.0.30", DeviceInfo("Orin", "8.7", 8, 8 << 30), base),
        tensorrt_cache_key(ONNX_SHA, "10.3.0.30", _identity(power_mode="15W (1)"), base),
        tensorrt_cache_key(ONNX_SHA, "10.3.0.30", _identity(board_model="NVIDIA Jetson Orin Nano Developer Kit"), base),
        tensorrt_cache_key(ONNX_SHA, "10.3.0.30", _identity(tensorrt_package_version="10.3.0.30-1+cuda12.6"), base),
        tensorrt_cache_key(ONNX_SHA, "10.3.0.30", ORIN, dataclasses.replace(base, workspace_mib=2048)),
        tensorrt_cache_key(ONNX_SHA, "10.3.0.30", ORIN, dataclasses.replace(base, batch=(1, 1, 8))),
        tensorrt_cache_key(ONNX_SHA, "10.3.0.30", ORIN, dataclasses.replace(base, dla_core=0, batch=(8, 8, 8))),
        tensorrt_cache_key(ONNX_SHA, "10.3.0.30", ORIN, dataclasses.replace(base, builder_optimization_level=5)),
    ]
    assert key not in others and len(set(others)) == len(others)


def test_engine_cache_for_resolves_the_default_and_refuses_bad_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "env-cache"))
    assert default_engine_cache_root() == tmp_path / "env-cache"
    cache = engine_cache_for()
    assert cache is not None and cache.root == tmp_path / "env-cache"
    assert not (tmp_path / "env-cache").exists()  # nothing is created before an engine is stored
    explicit = engine_cache_for(tmp_path / "mine")
    assert explicit is not None and explicit.root == tmp_path / "mine"
    assert engine_cache_for(enabled=False) is None
    with pytest.raises(ConfigError, match="disabled"):
        engine_cache_for(tmp_path / "mine", enabled=False)
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "file", tmp_path / "file" / "cache"):
        with pytest.raises(ConfigError, match="not a directory"):
            engine_cache_for(bad)
    monkeypatch.delenv(CACHE_ENV_VAR)
    assert default_engine_cache_root() == Path.home() / ".cache" / "cosep-deploy" / "engines"


def test_cache_entries_hold_the_cached_manifest(tmp_path: Path) -> None:
    cache, key = EngineCache(tmp_path / "cache"), _key()
    _run(CountingBuild(), tmp_path / "dense.fp16.engine", cache, key)
    data = json.loads((tmp_path / "cache" / key / EngineCache.MANIFEST_NAME).read_text())
    assert data["engine_file"] == EngineCache.ENGINE_NAME and data["onnx_sha256"] == ONNX_SHA


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.skipif(not is_available("tensorrt"), reason="needs TensorRT and an NVIDIA GPU")
def test_real_tensorrt_build_is_cached(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from cosep_deploy.backends.tensorrt.cache import cached_engine_from_onnx

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "tiny", [x], [y])
    src = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), src)
    config = TensorRTBuildConfig(precision="fp32", workspace_mib=64, batch=(1, 2, 4))
    cache = EngineCache(tmp_path / "cache")
    first = cached_engine_from_onnx(src, tmp_path / "a" / "m.engine", config, cache=cache)
    second = cached_engine_from_onnx(src, tmp_path / "b" / "m.engine", config, cache=cache)
    assert not first.hit and second.hit and first.key == second.key
    assert (tmp_path / "a" / "m.engine").read_bytes() == (tmp_path / "b" / "m.engine").read_bytes()
