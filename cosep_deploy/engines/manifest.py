"""Engine manifests and the engine cache.

A TensorRT engine only runs on the TensorRT release and GPU model that built it, so every engine file gets a
manifest beside it (``model.fp16.engine`` -> ``model.fp16.manifest.json``) recording what it was built from
(ONNX sha256), with what (runtime version, device, compute capability, build options) and its own sha256.
Loading checks the manifest first: a truncated file or an engine from another system fails with a message
that says what to rebuild, instead of a crash deep inside the runtime.

Building an engine takes minutes on a Jetson, so builds go through :func:`build_with_cache`: engines are kept
in an :class:`EngineCache` (``$COSEP_DEPLOY_CACHE``, default ``~/.cache/cosep-deploy/engines``) under a key of
everything that decides their bytes (:func:`engine_cache_key`), and a repeated build copies the cached one.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from cosep_deploy._version import __version__
from cosep_deploy.artifacts import JsonArtifact, ensure_writable_dir, sha256_file, staged_dir
from cosep_deploy.env import CACHE_ENV_VAR, engine_cache_root
from cosep_deploy.errors import ConfigError, CosepError, EngineLoadError, TargetMismatchError
from cosep_deploy.verbosity import get_logger

__all__ = [
    "CACHE_ENV_VAR",
    "IDENTITY_FIELDS",
    "CachedBuild",
    "EngineCache",
    "EngineManifest",
    "build_with_cache",
    "check_manifest_against",
    "default_engine_cache_root",
    "engine_cache_for",
    "engine_cache_key",
    "manifest_path_for",
    "same_release",
    "utc_now",
    "verify_engine_file",
]

# Jetson Thor reports 10.1 under CUDA 12 and 11.0 from CUDA 13 on: the same silicon, not a mismatch.
_CAPABILITY_ALIASES = {"10.1": "11.0"}
log = get_logger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EngineManifest(JsonArtifact):
    """What an engine file is and where it can run. Paths are file names relative to the manifest."""

    _schema: ClassVar[str] = "engine_manifest"
    _schema_version: ClassVar[int] = 1

    engine_file: str
    engine_sha256: str
    engine_bytes: int
    onnx_file: str
    onnx_sha256: str
    precision: str  # "fp32" | "fp16" | "int8" (on strongly typed engines: what the ONNX holds)
    target: str  # target profile name, "" if none
    backend: str  # "tensorrt", "trtexec", "onnxruntime"
    runtime: str  # "TensorRT", "ONNX Runtime"
    runtime_version: str
    device_name: str  # the CUDA device name ("Orin", "NVIDIA H100 80GB HBM3") or "cpu"; "unknown" if unread
    compute_capability: str  # "8.7"; "" for CPU engines
    dla_core: int | None = None
    # what tells devices of one name apart (see backends/tensorrt/identity.py); None / "" = not recorded
    device_sm_count: int | None = None
    device_memory_bytes: int | None = None
    board_model: str = ""  # /proc/device-tree/model on a Jetson
    power_mode: str = ""  # nvpmodel's mode on a Jetson: "MAXN (0)"
    tensorrt_package_version: str = ""  # the TensorRT package (pip or JetPack's deb), not only the module's version
    build_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    build_seconds: float = 0.0
    created: str = ""
    cosep_deploy_version: str = __version__

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EngineManifest:
        try:
            return super().from_json(data)
        except TypeError as exc:  # a required field is missing
            raise EngineLoadError(f"engine manifest is incomplete ({exc}); rebuild the engine") from exc

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EngineManifest:
        try:
            return super().load(path)
        except EngineLoadError:
            raise
        except CosepError as exc:
            raise EngineLoadError(str(exc)) from exc


def manifest_path_for(engine_path: str | os.PathLike[str]) -> Path:
    """``dir/model.fp16.engine`` -> ``dir/model.fp16.manifest.json``."""
    p = Path(engine_path)
    return p.with_name(f"{p.stem}.manifest.json")


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def verify_engine_file(manifest: EngineManifest, engine_path: str | os.PathLike[str]) -> None:
    """Raise :class:`EngineLoadError` if the engine file is missing, truncated or not the one described."""
    p = Path(engine_path)
    if not p.is_file():
        raise EngineLoadError(f"engine file {p} not found")
    size = p.stat().st_size
    if size != manifest.engine_bytes:
        raise EngineLoadError(
            f"engine file {p} has {size} bytes but its manifest records {manifest.engine_bytes}: the file is "
            f"truncated or was replaced; rebuild it from {manifest.onnx_file}"
        )
    digest = sha256_file(p)
    if digest != manifest.engine_sha256:
        raise EngineLoadError(
            f"engine file {p} is corrupted (sha256 {digest[:12]}... but the manifest records "
            f"{manifest.engine_sha256[:12]}...); rebuild it from {manifest.onnx_file}"
        )


def same_release(a: str, b: str) -> bool:
    """True if two runtime versions share major.minor.patch ("10.3.0.30" vs "10.3.0"): trtexec banners
    only carry three components, Python's ``tensorrt.__version__`` carries four."""
    return _release(a) == _release(b)


def _release(version: str) -> tuple[int, ...]:
    parts = [int(x) for x in re.findall(r"\d+", version)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


IDENTITY_FIELDS = ("device_sm_count", "device_memory_bytes", "board_model", "power_mode", "tensorrt_package_version")
_IDENTITY_WORDS = {
    "device_sm_count": "SM count",
    "device_memory_bytes": "GPU memory",
    "board_model": "board",
    "power_mode": "power mode",
    "tensorrt_package_version": "TensorRT package",
}


def check_manifest_against(
    manifest: EngineManifest,
    *,
    runtime_version: str,
    device_name: str,
    compute_capability: str,
    identity: Mapping[str, Any] | None = None,
) -> None:
    """Raise :class:`TargetMismatchError` if the engine cannot run on this system.

    TensorRT engines are tied to the TensorRT release and to the GPU model. Hardware-compatible engines
    (``build_options["hardware_compatibility"]``) run on any Ampere-or-newer dGPU of the same release.
    A manifest whose device was not recorded ("unknown") is checked on the version only. ``identity`` holds
    this system's values of :data:`IDENTITY_FIELDS` (SM count, memory, board model, power mode, TensorRT
    package); each one recorded on both sides must match (an AGX Orin engine is not served to an Orin Nano,
    nor a MAXN engine run at 15 W).
    """
    problems = []
    if not same_release(manifest.runtime_version, runtime_version):
        problems.append("runtime")
    hw_compat = bool(manifest.build_options.get("hardware_compatibility"))
    have_cc = _CAPABILITY_ALIASES.get(compute_capability, compute_capability)
    built_cc = _CAPABILITY_ALIASES.get(manifest.compute_capability, manifest.compute_capability)
    if hw_compat:
        if _release(have_cc)[0] < 8:
            problems.append("device")
    elif manifest.device_name != "unknown" and (built_cc != have_cc or manifest.device_name != device_name):
        problems.append("device")
    if not problems:
        _check_identity(manifest, identity or {})
        return
    raise TargetMismatchError(
        f"engine {manifest.engine_file} was built with {manifest.runtime} {manifest.runtime_version} on "
        f"{manifest.device_name} (sm {manifest.compute_capability}); this system has {manifest.runtime} "
        f"{runtime_version} on {device_name} (sm {compute_capability}): rebuild it here with "
        f"`cosep-deploy build` from {manifest.onnx_file}"
        + (f" for target {manifest.target}" if manifest.target else "")
    )


def _check_identity(manifest: EngineManifest, identity: Mapping[str, Any]) -> None:
    if manifest.device_name == "unknown" or manifest.build_options.get("hardware_compatibility"):
        return
    differ = []
    for field in IDENTITY_FIELDS:
        built, here = getattr(manifest, field), identity.get(field)
        if built not in (None, "") and here not in (None, "") and built != here:
            differ.append(f"{_IDENTITY_WORDS[field]} {built!r} when built, {here!r} here")
    if differ:
        fix = "switch the power mode back (sudo nvpmodel -m N) or " if any("power" in d for d in differ) else ""
        raise TargetMismatchError(
            f"engine {manifest.engine_file} was built on another device ({'; '.join(differ)}): {fix}rebuild it here "
            f"with `cosep-deploy build` from {manifest.onnx_file}"
        )


def engine_cache_key(onnx_sha256: str, runtime_version: str, device: str, options: Mapping[str, Any]) -> str:
    """Stable key of an engine: sha256 over canonical JSON of what decides its content.

    ``options`` must hold only what changes the engine (precision, shapes, workspace, DLA core...), not
    where files go. Tuples and lists hash alike; key order does not matter.
    """
    payload = {"onnx_sha256": onnx_sha256, "runtime_version": runtime_version, "device": device, "options": options}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_canonical)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(obj: Any) -> Any:
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"engine cache options must be JSON-like, found {type(obj).__name__}")


class EngineCache:
    """Engines stored by :func:`engine_cache_key`: ``root/<key>/engine.plan`` + ``manifest.json``.

    Entries are written whole (staged directory, then rename), and a lookup verifies the engine's sha256,
    so a crash or a damaged file is a cache miss, never a bad engine.
    """

    ENGINE_NAME = "engine.plan"
    MANIFEST_NAME = "manifest.json"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def lookup(self, key: str) -> Path | None:
        """The cached engine's path, or None if absent or damaged."""
        entry = self.root / key
        engine, manifest_file = entry / self.ENGINE_NAME, entry / self.MANIFEST_NAME
        if not (engine.is_file() and manifest_file.is_file()):
            return None
        try:
            verify_engine_file(EngineManifest.load(manifest_file), engine)
        except EngineLoadError:
            return None
        return engine

    def manifest(self, key: str) -> EngineManifest:
        return EngineManifest.load(self.root / key / self.MANIFEST_NAME)

    def store(self, key: str, engine_path: str | os.PathLike[str], manifest: EngineManifest) -> Path:
        """Copy an engine and its manifest into the cache (replacing any entry with this key)."""
        if not re.fullmatch(r"[0-9a-f]{16,64}", key):
            raise CosepError(f"engine cache key {key!r} is not a hex digest from engine_cache_key()")
        verify_engine_file(manifest, engine_path)
        with staged_dir(self.root / key, overwrite=True) as tmp:
            shutil.copyfile(engine_path, tmp / self.ENGINE_NAME)
            dataclasses.replace(manifest, engine_file=self.ENGINE_NAME).save(tmp / self.MANIFEST_NAME)
        return self.root / key / self.ENGINE_NAME


def default_engine_cache_root() -> Path:
    """See :func:`cosep_deploy.env.engine_cache_root` (``$COSEP_DEPLOY_CACHE``, then ``$XDG_CACHE_HOME``)."""
    return engine_cache_root()


def engine_cache_for(cache_dir: str | os.PathLike[str] | None = None, *, enabled: bool = True) -> EngineCache | None:
    """The engine cache a build should use: ``None`` when disabled, else one at ``cache_dir`` (default:
    :func:`default_engine_cache_root`). A path that cannot become a writable directory is refused up front
    (nothing is created until an engine is stored)."""
    if not enabled:
        if cache_dir is not None:
            raise ConfigError("an engine cache directory was given with the cache disabled: drop one of the two")
        return None
    root = Path(cache_dir) if cache_dir is not None else default_engine_cache_root()
    existing = next(p for p in (root, *root.parents) if p.exists())  # the filesystem root always exists
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        what = "is not a directory" if not existing.is_dir() else "is not writable"
        raise ConfigError(
            f"engine cache {root} cannot be used: {existing} {what}; pass another --cache-dir, or --no-cache"
        )
    return EngineCache(root)


@dataclasses.dataclass(frozen=True)
class CachedBuild:
    """An engine put in place by :func:`build_with_cache`: its manifest, and whether the cache supplied it."""

    manifest: EngineManifest
    hit: bool
    key: str | None  # None: the cache was not used

    def record(self) -> dict[str, Any]:
        """What a build report keeps about the cache's part: ``{"hit": ..., "key": ...}``."""
        return {"hit": self.hit, "key": self.key}


def build_with_cache(
    build: Callable[[Path], EngineManifest],
    engine_path: str | os.PathLike[str],
    *,
    cache: EngineCache | None,
    key: str,
    labels: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> CachedBuild:
    """Put the engine for ``key`` at ``engine_path`` (with its manifest beside it): copied from ``cache``
    on a hit, otherwise made by ``build(engine_path)`` (which writes the engine and its manifest and returns
    the manifest) and then stored in the cache.

    ``labels`` are manifest fields that name things rather than decide the engine's bytes (``onnx_file``,
    ``target``): a hit takes them from the request, not from whichever build filled the entry. A damaged
    entry is a miss, and a cache that cannot be written costs the reuse, never the build.
    """
    engine_file = Path(engine_path)
    say = progress or (lambda _msg: None)
    if cache is None:
        return CachedBuild(build(engine_file), hit=False, key=None)
    if cache.lookup(key) is not None:
        try:
            manifest = _restore_from_cache(cache, key, engine_file, labels or {})
        except (CosepError, OSError) as exc:  # replaced or damaged between lookup and copy
            say(f"engine cache entry {key[:12]} could not be used ({exc}); building instead")
        else:
            say(f"{engine_file.name}: reused the engine cached in {cache.root / key} (no build)")
            return CachedBuild(manifest, hit=True, key=key)
    log.info("engine cache miss for %s (key %s in %s): building", engine_file.name, key[:12], cache.root)
    manifest = build(engine_file)
    try:
        cache.store(key, engine_file, manifest)
    except (CosepError, OSError) as exc:
        say(f"{engine_file.name} was built but could not be stored in the engine cache {cache.root}: {exc}")
    else:
        say(f"{engine_file.name}: stored in the engine cache {cache.root / key}")
    return CachedBuild(manifest, hit=False, key=key)


def _restore_from_cache(cache: EngineCache, key: str, engine_file: Path, labels: Mapping[str, Any]) -> EngineManifest:
    """Copy a cached engine to ``engine_file`` (verified before it replaces anything) and write its manifest."""
    cached = cache.manifest(key)
    ensure_writable_dir(engine_file.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{engine_file.name}.", suffix=".tmp", dir=engine_file.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(cache.root / key / EngineCache.ENGINE_NAME, tmp)
        verify_engine_file(cached, tmp)
        os.replace(tmp, engine_file)
    finally:
        tmp.unlink(missing_ok=True)
    manifest = dataclasses.replace(cached, engine_file=engine_file.name, **labels)
    manifest.save(manifest_path_for(engine_file))
    return manifest
