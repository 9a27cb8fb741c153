"""Engine manifests: round trip, integrity and system checks, cache keys, the engine cache."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from cosep_deploy.engines.manifest import (
    EngineCache,
    EngineManifest,
    check_manifest_against,
    engine_cache_key,
    manifest_path_for,
    same_release,
    verify_engine_file,
)
from cosep_deploy.errors import EngineLoadError, TargetMismatchError
from tests.engines.fake_engines import write_engine


def _engine(tmp_path: Path, payload: bytes = b"fake serialized engine bytes") -> tuple[Path, EngineManifest]:
    engine = tmp_path / "model.fp16.engine"
    manifest = write_engine(
        engine, payload, save=False, build_options={"workspace_mib": 4096, "batch": [1, 8, 40]}, build_seconds=12.5
    )
    return engine, manifest


def test_round_trip_and_schema(tmp_path: Path) -> None:
    engine, manifest = _engine(tmp_path)
    path = manifest.save(manifest_path_for(engine))
    assert path.name == "model.fp16.manifest.json"
    data = json.loads(path.read_text())
    assert data["schema"] == "engine_manifest" and data["schema_version"] == 1
    assert EngineManifest.load(path) == manifest


def test_incomplete_or_foreign_manifest_is_an_engine_load_error(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"schema": "engine_manifest", "schema_version": 1, "engine_file": "x"}))
    with pytest.raises(EngineLoadError, match="incomplete"):
        EngineManifest.load(path)
    path.write_text(json.dumps({"schema": "bench_report", "schema_version": 1}))
    with pytest.raises(EngineLoadError, match="expected a engine_manifest"):
        EngineManifest.load(path)


def test_truncated_or_corrupted_engine_is_refused(tmp_path: Path) -> None:
    engine, manifest = _engine(tmp_path)
    verify_engine_file(manifest, engine)
    engine.write_bytes(b"fake serialized engine")  # truncated
    with pytest.raises(EngineLoadError, match="truncated"):
        verify_engine_file(manifest, engine)
    engine.write_bytes(b"fake serialized engine BYTES")  # same size, other content
    with pytest.raises(EngineLoadError, match="corrupted"):
        verify_engine_file(manifest, engine)
    engine.unlink()
    with pytest.raises(EngineLoadError, match="not found"):
        verify_engine_file(manifest, engine)


def test_same_release_ignores_the_build_number() -> None:
    assert same_release("10.3.0.30", "10.3.0")
    assert not same_release("10.3.0", "10.13.0")
    assert same_release("10.3", "10.3.0")


def test_check_passes_on_the_same_system(tmp_path: Path) -> None:
    _, manifest = _engine(tmp_path)
    check_manifest_against(manifest, runtime_version="10.3.0", device_name="Orin", compute_capability="8.7")


def test_mismatch_message_names_both_systems_and_the_fix(tmp_path: Path) -> None:
    _, manifest = _engine(tmp_path)
    with pytest.raises(TargetMismatchError) as info:
        check_manifest_against(
            manifest, runtime_version="10.13.0.35", device_name="NVIDIA H100 80GB HBM3", compute_capability="9.0"
        )
    message = str(info.value)
    assert "built with TensorRT 10.3.0.30 on Orin (sm 8.7)" in message
    assert "this system has TensorRT 10.13.0.35 on NVIDIA H100 80GB HBM3 (sm 9.0)" in message
    assert "cosep-deploy build" in message and "model.fp16.onnx" in message
    with pytest.raises(TargetMismatchError):  # same TensorRT, other GPU
        check_manifest_against(manifest, runtime_version="10.3.0", device_name="Xavier", compute_capability="7.2")


def test_thor_capability_renumbering_is_not_a_mismatch(tmp_path: Path) -> None:
    _, manifest = _engine(tmp_path)
    thor = dataclasses.replace(manifest, device_name="Thor", compute_capability="10.1")
    check_manifest_against(thor, runtime_version="10.3.0", device_name="Thor", compute_capability="11.0")


def test_hardware_compatible_engines_run_on_any_ampere_plus(tmp_path: Path) -> None:
    _, manifest = _engine(tmp_path)
    compat = dataclasses.replace(
        manifest, device_name="NVIDIA A100", compute_capability="8.0", build_options={"hardware_compatibility": True}
    )
    check_manifest_against(compat, runtime_version="10.3.0", device_name="NVIDIA H100", compute_capability="9.0")
    with pytest.raises(TargetMismatchError):
        check_manifest_against(compat, runtime_version="10.3.0", device_name="Tesla T4", compute_capability="7.5")


def test_unknown_device_is_checked_on_version_only(tmp_path: Path) -> None:
    _, manifest = _engine(tmp_path)
    unknown = dataclasses.replace(manifest, device_name="unknown", compute_capability="unknown")
    check_manifest_against(unknown, runtime_version="10.3.0", device_name="Orin", compute_capability="8.7")
    with pytest.raises(TargetMismatchError):
        check_manifest_against(unknown, runtime_version="10.4.0", device_name="Orin", compute_capability="8.7")


def test_cache_key_is_stable_and_sensitive() -> None:
    base = engine_cache_key("ab" * 32, "10.3.0", "Orin", {"precision": "fp16", "batch": (1, 8, 40)})
    assert base == engine_cache_key("ab" * 32, "10.3.0", "Orin", {"batch": [1, 8, 40], "precision": "fp16"})
    assert len(base) == 64 and int(base, 16) >= 0
    others = [
        engine_cache_key("cd" * 32, "10.3.0", "Orin", {"precision": "fp16", "batch": (1, 8, 40)}),
        engine_cache_key("ab" * 32, "10.3.1", "Orin", {"precision": "fp16", "batch": (1, 8, 40)}),
        engine_cache_key("ab" * 32, "10.3.0", "Thor", {"precision": "fp16", "batch": (1, 8, 40)}),
        engine_cache_key("ab" * 32, "10.3.0", "Orin", {"precision": "int8", "batch": (1, 8, 40)}),
    ]
    assert len({base, *others}) == 5
    with pytest.raises(TypeError, match="JSON-like"):
        engine_cache_key("ab" * 32, "10.3.0", "Orin", {"bad": object()})


def test_engine_cache_store_lookup_and_damage(tmp_path: Path) -> None:
    engine, manifest = _engine(tmp_path)
    cache = EngineCache(tmp_path / "cache")
    key = engine_cache_key(manifest.onnx_sha256, manifest.runtime_version, manifest.device_name, {"p": "fp16"})
    assert cache.lookup(key) is None
    stored = cache.store(key, engine, manifest)
    assert cache.lookup(key) == stored and stored.read_bytes() == engine.read_bytes()
    assert cache.manifest(key).engine_file == EngineCache.ENGINE_NAME
    assert not list((tmp_path / "cache").glob(".*staging"))  # the staging directory was renamed away
    stored.write_bytes(b"garbage")
    assert cache.lookup(key) is None  # a damaged entry is a miss, not a bad engine
    cache.store(key, engine, manifest)  # replacing an entry works
    assert cache.lookup(key) == stored


def test_engine_cache_refuses_mismatched_engine_and_bad_key(tmp_path: Path) -> None:
    engine, manifest = _engine(tmp_path)
    cache = EngineCache(tmp_path / "cache")
    engine.write_bytes(b"another engine entirely!!!!!")
    with pytest.raises(EngineLoadError):
        cache.store("ab" * 32, engine, manifest)
    assert not (tmp_path / "cache" / ("ab" * 32)).exists()
    with pytest.raises(Exception, match="not a hex digest"):
        cache.store("../escape", engine, manifest)


def test_orin_modules_told_apart_by_identity(tmp_path: Path) -> None:
    """Every Orin module is "Orin" at sm 8.7: SMs, memory, board model, power mode and package decide."""
    _, manifest = _engine(tmp_path)
    agx = dataclasses.replace(
        manifest,
        device_sm_count=16,
        device_memory_bytes=64 << 30,
        board_model="NVIDIA Jetson AGX Orin Developer Kit",
        power_mode="MAXN (0)",
        tensorrt_package_version="10.3.0.30-1+cuda12.5",
    )
    same = {
        "device_sm_count": 16,
        "device_memory_bytes": 64 << 30,
        "board_model": "NVIDIA Jetson AGX Orin Developer Kit",
        "power_mode": "MAXN (0)",
        "tensorrt_package_version": "10.3.0.30-1+cuda12.5",
    }
    here = {"runtime_version": "10.3.0.30", "device_name": "Orin", "compute_capability": "8.7"}
    check_manifest_against(agx, **here, identity=same)
    check_manifest_against(agx, **here, identity={})  # nothing read here: name, capability and release only
    nano = {**same, "device_sm_count": 8, "device_memory_bytes": 8 << 30, "board_model": "NVIDIA Jetson Orin Nano"}
    with pytest.raises(TargetMismatchError, match=r"SM count 16 when built, 8 here.*board"):
        check_manifest_against(agx, **here, identity=nano)
    with pytest.raises(TargetMismatchError, match=r"power mode 'MAXN \(0\)' when built, '15W \(1\)' here.*nvpmodel -m"):
        check_manifest_against(agx, **here, identity={**same, "power_mode": "15W (1)"})
    loaded = EngineManifest.from_json(json.loads(json.dumps(agx.to_json())))
    assert loaded == agx
    old = {k: v for k, v in manifest.to_json().items() if k not in ("device_sm_count", "power_mode")}
    assert EngineManifest.from_json(old).device_sm_count is None  # manifests written before identity load
