"""A device target profile, the record: what an engine for a given device must look like.

A profile tells the pruner which channel alignment pays off (``round_to``: padded channels cost time on tensor
cores), the exporter which precisions make sense, and the engine builder which backend, workspace, batch profile,
DLA use and TensorRT versions apply. ``target_profiles/README.md`` documents every field. Profiles are read and
validated by :mod:`cosep_deploy.target_files` and found by name by :mod:`cosep_deploy.targets`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from cosep_deploy.errors import ConfigError, unknown_name

__all__ = [
    "BACKENDS",
    "KINDS",
    "PRECISIONS",
    "BatchRange",
    "DlaSettings",
    "PowerModes",
    "TargetProfile",
    "parse_version_range",
    "version_in_range",
    "version_tuple",
]

PRECISIONS = ("fp32", "fp16", "int8")
KINDS = ("jetson", "dgpu", "cpu")
BACKENDS = ("tensorrt", "onnxruntime")
_RANGE_RE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)\s*$")


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
        """The profile as TOML text that :func:`~cosep_deploy.target_files.load_target` reads back unchanged."""
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


def version_in_range(version: str, spec: str) -> bool:
    """True if ``version`` satisfies every comma-separated clause of ``spec`` (">=10.3,<12").
    Versions compare numerically, padded with zeros ("10.3" == "10.3.0.0")."""
    have = version_tuple(version)
    for op, bound in parse_version_range(spec):
        width = max(len(have), len(bound))
        a, b = have + (0,) * (width - len(have)), bound + (0,) * (width - len(bound))
        ok = {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b, "==": a == b, "!=": a != b}[op]
        if not ok:
            return False
    return True


def version_tuple(version: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", version)
    if not parts:
        raise ConfigError(f"cannot read a version number from {version!r}")
    return tuple(int(x) for x in parts)


def parse_version_range(spec: str) -> list[tuple[str, tuple[int, ...]]]:
    clauses = []
    for clause in spec.split(","):
        m = _RANGE_RE.match(clause)
        if not m:
            raise ConfigError(f"version range {spec!r}: clause {clause.strip()!r} is not like '>=10.3' or '<12'")
        clauses.append((m.group(1), tuple(int(x) for x in m.group(2).split("."))))
    return clauses


def _toml_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'
