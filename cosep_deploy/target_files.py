"""Read and validate one target profile TOML file: :func:`load_target`.

Every error names the file and the field, and says what was expected: a field of the wrong type, a value out
of its choices, a field unknown to the format ("did you mean ..."), and the combinations the build stage could
not honour (a TensorRT target without a TensorRT range, DLA on a device without DLA cores ...).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cosep_deploy.errors import ConfigError, unknown_name
from cosep_deploy.target_profile import (
    BACKENDS,
    KINDS,
    PRECISIONS,
    BatchRange,
    DlaSettings,
    PowerModes,
    TargetProfile,
    parse_version_range,
    version_in_range,
    version_tuple,
)

__all__ = ["load_target"]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")
_TOP_KEYS = (
    "name",
    "description",
    "kind",
    "backend",
    "precisions",
    "default_precision",
    "round_to",
    "dla",
    "workspace_mib",
    "batch",
    "tensorrt",
    "compute_capability",
    "jetpack",
    "tensorrt_releases",
    "power",
    "notes",
)


def load_target(path: str | os.PathLike[str]) -> TargetProfile:
    """Read and validate one target TOML file; every error names the file and the field."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"target file {p} not found")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"target file {p} is not valid TOML: {exc}") from exc
    return _profile_from_dict(data, source=str(p))


class _Fields:
    """Typed access to one TOML table with errors that name the file and the field."""

    def __init__(self, data: Mapping[str, Any], source: str, prefix: str, allowed: tuple[str, ...]) -> None:
        self.data, self.source, self.prefix = data, source, prefix
        for key in data:
            if key not in allowed:
                raise ConfigError(f"{source}: " + unknown_name("field", prefix + key, [prefix + a for a in allowed]))

    def fail(self, key: str, expected: str, value: Any) -> ConfigError:
        return ConfigError(f"{self.source}: field {self.prefix + key!r}: expected {expected}, found {value!r}")

    def get(self, key: str, kind: type, expected: str, default: Any = ..., choices: tuple[str, ...] = ()) -> Any:
        if key not in self.data:
            if default is ...:
                raise ConfigError(f"{self.source}: missing required field {self.prefix + key!r} ({expected})")
            return default
        value = self.data[key]
        # bool is an int subclass: `workspace_mib = true` must not pass as 1
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(key, expected, value)
        if choices and value not in choices:
            raise self.fail(key, "one of " + ", ".join(choices), value)
        return value


def _profile_from_dict(data: Mapping[str, Any], *, source: str) -> TargetProfile:
    f = _Fields(data, source, "", _TOP_KEYS)
    name = f.get("name", str, "a lower-case name such as 'jetson-agx-orin'")
    if not _NAME_RE.match(name):
        raise f.fail("name", "lower-case letters, digits, '.', '_', '+' or '-'", name)
    kind = f.get("kind", str, "a device kind", choices=KINDS)
    backend = f.get("backend", str, "a backend", choices=BACKENDS)
    precisions = _precisions(f)
    default_precision = f.get("default_precision", str, "one of the listed precisions", choices=tuple(precisions))
    round_to = _round_to(f, tuple(precisions))
    workspace = f.get("workspace_mib", int, "an integer number of MiB (0 for onnxruntime)")
    if workspace < 0 or (backend == "tensorrt" and workspace == 0):
        raise f.fail("workspace_mib", "a positive number of MiB for TensorRT targets (>= 0 otherwise)", workspace)
    batch = _batch(f)
    dla = _dla(f)
    trt_range, capability = _tensorrt_range(f), _compute_capability(f)
    jetpack = f.get("jetpack", str, "a JetPack version such as '6.2'", default=None)
    # cross-field rules: the combinations the build stage could not honour
    if (kind == "cpu") != (backend == "onnxruntime"):
        raise f.fail("backend", "'onnxruntime' for kind 'cpu' and 'tensorrt' for GPU kinds", backend)
    if backend == "tensorrt" and (trt_range is None or capability is None):
        missing = "tensorrt" if trt_range is None else "compute_capability"
        raise ConfigError(f"{source}: missing required field {missing!r} (needed for TensorRT targets)")
    releases = _releases(f, trt_range)
    if kind == "jetson" and jetpack is None:
        raise ConfigError(f"{source}: missing required field 'jetpack' (needed for Jetson targets)")
    if dla.use_dla:
        if kind != "jetson" or dla.dla_cores == 0:
            raise ConfigError(f"{source}: field 'dla.use_dla': this device has no DLA cores (dla.dla_cores = 0)")
        if default_precision == "fp32":
            raise f.fail("default_precision", "'fp16' or 'int8' when dla.use_dla (DLA has no fp32)", "fp32")
    return TargetProfile(
        name=name,
        description=f.get("description", str, "a one-line description"),
        kind=kind,
        backend=backend,
        precisions=tuple(precisions),
        default_precision=default_precision,
        round_to=round_to,
        dla=dla,
        workspace_mib=workspace,
        batch=batch,
        tensorrt=trt_range,
        compute_capability=capability,
        jetpack=jetpack,
        tensorrt_releases=releases,
        power=_power(f),
        notes=f.get("notes", str, "free text", default=""),
    )


def _precisions(f: _Fields) -> list[str]:
    precisions: list[str] = f.get("precisions", list, "a list of precisions such as ['fp16', 'int8']")
    if not precisions or any(p not in PRECISIONS for p in precisions) or len(set(precisions)) != len(precisions):
        raise f.fail("precisions", "a non-empty list of distinct values from " + ", ".join(PRECISIONS), precisions)
    return precisions


def _tensorrt_range(f: _Fields) -> str | None:
    trt_range: str | None = f.get("tensorrt", str, "a version range such as '>=10.3,<12'", default=None)
    if trt_range is not None:
        try:
            parse_version_range(trt_range)
        except ConfigError as exc:
            raise f.fail("tensorrt", "a version range such as '>=10.3,<12'", trt_range) from exc
    return trt_range


def _compute_capability(f: _Fields) -> str | None:
    capability: str | None = f.get("compute_capability", str, "a compute capability such as '8.7'", default=None)
    if capability is not None and not re.fullmatch(r"\d+\.\d+", capability):
        raise f.fail("compute_capability", "MAJOR.MINOR such as '8.7'", capability)
    return capability


def _releases(f: _Fields, trt_range: str | None) -> tuple[str, ...]:
    """``tensorrt_releases``: versions inside ``tensorrt`` and covered by the ONNX support table, oldest first
    (default: the table's releases inside the range)."""
    from cosep_deploy.onnx_compat import release_support, support_table

    raw = f.get("tensorrt_releases", list, "a list of TensorRT versions such as ['8.5.2', '10.3']", default=None)
    if raw is None:  # default: every release of the support table inside the range
        if trt_range is None:
            return ()
        return tuple(r.release for r in support_table() if version_in_range(r.release, trt_range))
    if any(not isinstance(r, str) or not re.fullmatch(r"\d+(\.\d+)*", r) for r in raw):
        raise f.fail("tensorrt_releases", "a list of version strings such as ['8.5.2', '10.3']", raw)
    if raw and trt_range is None:
        raise f.fail("tensorrt_releases", "no releases without a 'tensorrt' range", raw)
    for release in raw:
        if trt_range is not None and not version_in_range(release, trt_range):
            raise f.fail("tensorrt_releases", f"releases inside tensorrt = {trt_range!r}", release)
        try:
            release_support(release)
        except ConfigError as exc:
            raise f.fail(
                "tensorrt_releases", "releases the ONNX support table covers (8.5 and newer)", release
            ) from exc
    return tuple(sorted(raw, key=version_tuple))


def _power(f: _Fields) -> PowerModes:
    raw = f.get("power", dict, "a table with max_modes and max_mode_id", default={})
    sub = _Fields(raw, f.source, "power.", ("max_modes", "max_mode_id"))
    names = sub.get("max_modes", list, "a list of nvpmodel mode names such as ['MAXN']", default=[])
    if any(not isinstance(n, str) or not n for n in names):
        raise sub.fail("max_modes", "a list of nvpmodel mode names such as ['MAXN']", names)
    ident = sub.get("max_mode_id", int, "the nvpmodel id of the maximum mode", default=None)
    return PowerModes(max_modes=tuple(names), max_mode_id=ident)


def _round_to(f: _Fields, precisions: tuple[str, ...]) -> dict[str, int]:
    raw = f.data.get("round_to")
    if isinstance(raw, int) and not isinstance(raw, bool):
        table: Mapping[str, Any] = dict.fromkeys(precisions, raw)
    elif isinstance(raw, dict):
        table = raw
        _Fields(raw, f.source, "round_to.", precisions)
    else:
        raise f.fail("round_to", "an integer or a table {fp16 = 8, int8 = 32} covering every precision", raw)
    out: dict[str, int] = {}
    for prec in precisions:
        if prec not in table:
            raise ConfigError(f"{f.source}: missing field 'round_to.{prec}' (every listed precision needs one)")
        value = table[prec]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise f.fail(f"round_to.{prec}" if isinstance(raw, dict) else "round_to", "a positive integer", value)
        out[prec] = value
    return out


def _batch(f: _Fields) -> BatchRange:
    raw = f.get("batch", dict, "a table with min, opt and max")
    sub = _Fields(raw, f.source, "batch.", ("min", "opt", "max"))
    lo, opt, hi = (sub.get(k, int, "a positive integer") for k in ("min", "opt", "max"))
    if not 1 <= lo <= opt <= hi:
        raise f.fail("batch", "1 <= min <= opt <= max", raw)
    return BatchRange(min=lo, opt=opt, max=hi)


def _dla(f: _Fields) -> DlaSettings:
    raw = f.get("dla", dict, "a table with use_dla, dla_cores and gpu_fallback", default={})
    sub = _Fields(raw, f.source, "dla.", ("use_dla", "dla_cores", "gpu_fallback"))
    cores = raw.get("dla_cores", 0)
    if cores == "query":
        cores = None
    elif not isinstance(cores, int) or isinstance(cores, bool) or cores < 0:
        raise sub.fail("dla_cores", 'a non-negative integer or "query"', cores)
    return DlaSettings(
        use_dla=sub.get("use_dla", bool, "true or false", default=False),
        dla_cores=cores,
        gpu_fallback=sub.get("gpu_fallback", bool, "true or false", default=True),
    )
