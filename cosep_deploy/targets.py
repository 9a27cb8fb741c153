"""Device target profiles: what an engine for a given device must look like.

A target is a small declarative record read from one TOML file. The shipped profiles are package data
(``cosep_deploy/target_profiles/jetson-agx-orin.toml`` ...). Users add their own as TOML files of the
same shape: in folders named by ``$COSEP_DEPLOY_TARGETS`` (separated like ``PATH``), with
``--target-file FILE`` on the command line (:func:`register_target_file`), or by passing a file's path
wherever a target name is taken. A profile tells the pruner which channel alignment pays off (``round_to``:
padded channels cost time on tensor cores), the exporter which precisions make sense, and the engine
builder which backend, workspace, batch profile, DLA use and TensorRT versions apply.
``target_profiles/README.md`` documents every field.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cosep_deploy.env import TARGETS_ENV_VAR, user_target_dirs
from cosep_deploy.errors import ConfigError, unknown_name

__all__ = [
    "PRECISIONS",
    "TARGETS_DIR",
    "BatchRange",
    "DlaSettings",
    "PowerModes",
    "TargetProfile",
    "get_target",
    "list_targets",
    "load_target",
    "register_target_file",
    "version_in_range",
]

# The shipped profiles are package data, so an installed wheel has them too.
TARGETS_DIR = Path(__file__).resolve().parent / "target_profiles"
PRECISIONS = ("fp32", "fp16", "int8")
KINDS = ("jetson", "dgpu", "cpu")
BACKENDS = ("tensorrt", "onnxruntime")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")
_RANGE_RE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)\s*$")
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class BatchRange:
    """Batch sizes of the engine's optimization profile: TensorRT tunes kernels for ``opt``."""

    min: int
    opt: int
    max: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class DlaSettings:
    """Deep Learning Accelerator use. ``dla_cores`` None means "query ``builder.num_DLA_cores`` at run time"
    (module variants of one board differ, e.g. Orin NX 8 GB vs 16 GB)."""

    use_dla: bool = False
    dla_cores: int | None = 0
    gpu_fallback: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class PowerModes:
    """The board's maximum power mode: the names ``nvpmodel -q`` prints for it (they differ per module and
    JetPack: MAXN, MAXN_SUPER, MODE_20W_6CORE ...) and its id on the profile's JetPack (``nvpmodel -m ID``).
    On the board the id is looked up by name in ``/etc/nvpmodel.conf``, since ids differ between releases."""

    max_modes: tuple[str, ...] = ()
    max_mode_id: int | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class TargetProfile:
    """One device target; see ``target_profiles/README.md`` for the meaning of each field."""

    name: str
    description: str
    kind: str  # "jetson" | "dgpu" | "cpu"
    backend: str  # "tensorrt" | "onnxruntime"
    precisions: tuple[str, ...]
    default_precision: str
    round_to: Mapping[str, int]  # channel alignment per precision
    dla: DlaSettings
    workspace_mib: int
    batch: BatchRange
    tensorrt: str | None = None  # version range, e.g. ">=10.3,<12"
    compute_capability: str | None = None  # "8.7"; for dgpu targets the minimum
    jetpack: str | None = None
    tensorrt_releases: tuple[str, ...] = ()  # the releases engines are built with, oldest first
    power: PowerModes = dataclasses.field(default_factory=PowerModes)
    notes: str = ""

    def round_to_for(self, precision: str | None = None) -> int:
        """Channel multiple the pruner should keep for engines of ``precision`` (default precision if None)."""
        prec = precision or self.default_precision
        if prec not in self.round_to:
            raise ConfigError(unknown_name(f"precision for target {self.name!r}", prec, self.round_to))
        return self.round_to[prec]

    def supports_tensorrt(self, version: str) -> bool:
        """True if TensorRT ``version`` (e.g. "10.3.0.30") lies in this target's range."""
        return self.tensorrt is not None and version_in_range(version, self.tensorrt)

    def to_toml(self) -> str:
        """The profile as TOML text that :func:`load_target` reads back to an equal profile."""
        lines = [f"name = {_toml_str(self.name)}", f"description = {_toml_str(self.description)}"]
        lines += [f"kind = {_toml_str(self.kind)}", f"backend = {_toml_str(self.backend)}"]
        lines.append("precisions = [" + ", ".join(_toml_str(p) for p in self.precisions) + "]")
        lines.append(f"default_precision = {_toml_str(self.default_precision)}")
        lines.append(f"workspace_mib = {self.workspace_mib}")
        for key in ("tensorrt", "compute_capability", "jetpack"):
            value = getattr(self, key)
            if value is not None:
                lines.append(f"{key} = {_toml_str(value)}")
        if self.tensorrt_releases:
            lines.append("tensorrt_releases = [" + ", ".join(_toml_str(r) for r in self.tensorrt_releases) + "]")
        lines.append(f"notes = {_toml_str(self.notes)}")
        lines += ["", "[round_to]", *(f"{k} = {v}" for k, v in self.round_to.items())]
        lines += ["", "[batch]", f"min = {self.batch.min}", f"opt = {self.batch.opt}", f"max = {self.batch.max}"]
        cores = '"query"' if self.dla.dla_cores is None else str(self.dla.dla_cores)
        lines += ["", "[dla]", f"use_dla = {str(self.dla.use_dla).lower()}", f"dla_cores = {cores}"]
        lines.append(f"gpu_fallback = {str(self.dla.gpu_fallback).lower()}")
        if self.power.max_modes:
            lines += ["", "[power]", "max_modes = [" + ", ".join(_toml_str(m) for m in self.power.max_modes) + "]"]
            if self.power.max_mode_id is not None:
                lines.append(f"max_mode_id = {self.power.max_mode_id}")
        return "\n".join(lines) + "\n"


_registered: list[Path] = []  # --target-file: profiles added for this process


def register_target_file(path: str | os.PathLike[str]) -> TargetProfile:
    """Make the profile in ``path`` known by its name for the rest of this process (``--target-file``)."""
    profile = load_target(path)
    _registered.append(Path(path))
    _profile_files()  # a name clash with another profile is refused now, not at first use
    return profile


def _profile_files(directory: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Name -> TOML file: one folder if given; else the shipped profiles, the user's folders and registered
    files. A name defined twice is refused (naming both files) rather than silently shadowed."""
    if directory is not None:
        folder = Path(directory)
        if not folder.is_dir():
            raise ConfigError(f"target folder {folder} does not exist (expected one TOML file per target)")
        return {p.stem: p for p in sorted(folder.glob("*.toml"))}
    files: dict[str, Path] = {}
    candidates = [*sorted(TARGETS_DIR.glob("*.toml"))]
    for folder in user_target_dirs():
        if not folder.is_dir():
            raise ConfigError(
                f"{TARGETS_ENV_VAR} names {folder}, which is not a folder (expected one TOML file per target)"
            )
        candidates += sorted(folder.glob("*.toml"))
    candidates += _registered
    for path in candidates:
        name = load_target(path).name if path in _registered else path.stem
        if name in files and files[name].resolve() != path.resolve():
            raise ConfigError(f"target {name!r} is defined twice: {files[name]} and {path}; rename one of them")
        files[name] = path
    return files


def list_targets(directory: str | os.PathLike[str] | None = None) -> list[TargetProfile]:
    """Every profile in ``directory`` (default: shipped, ``$COSEP_DEPLOY_TARGETS`` and registered), by name."""
    found = _profile_files(directory)
    return [_load_named(found[name], check_stem=found[name] not in _registered) for name in sorted(found)]


def get_target(name_or_path: str | os.PathLike[str]) -> TargetProfile:
    """A target by name (``"jetson-agx-orin"``) or a user's profile by TOML file path."""
    text = os.fspath(name_or_path)
    if text.endswith(".toml") or os.sep in text or Path(text).is_file():
        return load_target(text)
    found = _profile_files()
    if text in found:
        return _load_named(found[text], check_stem=found[text] not in _registered)
    raise ConfigError(
        unknown_name("target", text, found)
        + f" (or pass the path of your own target TOML file, --target-file FILE, or a folder in {TARGETS_ENV_VAR})"
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


def _load_named(path: Path, *, check_stem: bool = True) -> TargetProfile:
    # in a folder of profiles the file name is the lookup key, so it must agree with the name inside
    profile = load_target(path)
    if check_stem and profile.name != path.stem:
        raise ConfigError(f"{path}: field 'name': {profile.name!r} must equal the file name {path.stem!r}")
    return profile


def version_in_range(version: str, spec: str) -> bool:
    """True if ``version`` satisfies every comma-separated clause of ``spec`` (">=10.3,<12").
    Versions compare numerically, padded with zeros ("10.3" == "10.3.0.0")."""
    have = _version_tuple(version)
    for op, bound in _parse_range(spec):
        width = max(len(have), len(bound))
        a, b = have + (0,) * (width - len(have)), bound + (0,) * (width - len(bound))
        ok = {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b, "==": a == b, "!=": a != b}[op]
        if not ok:
            return False
    return True


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", version)
    if not parts:
        raise ConfigError(f"cannot read a version number from {version!r}")
    return tuple(int(x) for x in parts)


def _parse_range(spec: str) -> list[tuple[str, tuple[int, ...]]]:
    clauses = []
    for clause in spec.split(","):
        m = _RANGE_RE.match(clause)
        if not m:
            raise ConfigError(f"version range {spec!r}: clause {clause.strip()!r} is not like '>=10.3' or '<12'")
        clauses.append((m.group(1), tuple(int(x) for x in m.group(2).split("."))))
    return clauses


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
    precisions = f.get("precisions", list, "a list of precisions such as ['fp16', 'int8']")
    if not precisions or any(p not in PRECISIONS for p in precisions) or len(set(precisions)) != len(precisions):
        raise f.fail("precisions", "a non-empty list of distinct values from " + ", ".join(PRECISIONS), precisions)
    default_precision = f.get("default_precision", str, "one of the listed precisions", choices=tuple(precisions))
    round_to = _round_to(f, tuple(precisions))
    workspace = f.get("workspace_mib", int, "an integer number of MiB (0 for onnxruntime)")
    if workspace < 0 or (backend == "tensorrt" and workspace == 0):
        raise f.fail("workspace_mib", "a positive number of MiB for TensorRT targets (>= 0 otherwise)", workspace)
    batch = _batch(f)
    dla = _dla(f)
    trt_range = f.get("tensorrt", str, "a version range such as '>=10.3,<12'", default=None)
    if trt_range is not None:
        try:
            _parse_range(trt_range)
        except ConfigError as exc:
            raise f.fail("tensorrt", "a version range such as '>=10.3,<12'", trt_range) from exc
    capability = f.get("compute_capability", str, "a compute capability such as '8.7'", default=None)
    if capability is not None and not re.fullmatch(r"\d+\.\d+", capability):
        raise f.fail("compute_capability", "MAJOR.MINOR such as '8.7'", capability)
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
    return tuple(sorted(raw, key=_version_tuple))


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


def _toml_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'
