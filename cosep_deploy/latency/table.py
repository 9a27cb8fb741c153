"""The latency table: per layer shape, measured time at kept (input, output) widths on a target.

File format (JSON, ``schema: "LatencyTable"``, ``schema_version: 1``), the same whoever measured it (ONNX
Runtime here, or the deploy bundle's sweep on a board from ``trtexec --exportProfile``):

- ``key``: what the times are valid for: ``target``, ``backend`` ("onnxruntime" | "tensorrt"),
  ``runtime_version``, ``device`` (CPU model and SIMD flags; a GPU's name and compute capability),
  ``precision``, ``batch``, ``threads`` (CPU; 0 on a GPU). A table whose key differs from the run's is
  refused: times from another device, runtime or batch say nothing about this one.
- ``entries``: ``{layer signature: {"kind", "in_grid", "out_grid", "ms", "rel_iqr", "layers"}}``. ``ms[i][j]``
  is the median time in milliseconds of the layer at ``in_grid[i]`` input and ``out_grid[j]`` output
  channels; ``rel_iqr`` the interquartile range over the median at the same point (noise). A tied layer
  (depthwise) has ``in_grid == []`` and one row: its input width is its output width. A side that no
  pruned group controls has one grid point, its dense width.
- ``whole_model``: the dense model measured whole (``dense_ms``), the sum of its layers' table times at
  dense widths (``explained_ms``) and their ratio (``explained_fraction``): how much of the model's time
  the table's layers account for (the rest is pooling, additions, layout changes, or kernel fusion).
- ``noise``: median and maximum ``rel_iqr`` over all points; ``seconds``: how long the sweep took;
  ``source``: how the times were measured; ``provenance``.

Board-produced tables (TensorRT): the bundle's sweep writes this same format with ``backend:
"tensorrt"``; per-point times come from the layer rows of ``trtexec --exportProfile`` (average ms)
whose names contain the measured layer's ONNX node name.
"""

from __future__ import annotations

import bisect
import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cosep_deploy.artifacts import JsonArtifact, read_json
from cosep_deploy.errors import CosepError, LatencyTableError
from cosep_deploy.latency.layers import LayerSpec

__all__ = ["LatencyTable", "TableKey", "interpolate", "load_table"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TableKey:
    """What a table's times are valid for; two tables are interchangeable only if their keys are equal."""

    target: str
    backend: str
    runtime_version: str
    device: str
    precision: str
    batch: int
    threads: int

    def file_name(self) -> str:
        import hashlib
        import json

        digest = hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.target}-{self.precision}-b{self.batch}-{digest}.json"

    def mismatch(self, other: TableKey) -> str | None:
        """The first field where ``other`` differs, as ``field: table has X, run needs Y``; None if equal."""
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine != theirs:
                return f"{f.name}: the table has {mine!r}, this run needs {theirs!r}"
        return None


@dataclasses.dataclass(frozen=True, kw_only=True)
class LatencyTable(JsonArtifact):
    """Measured layer times on one target; see the module docstring for the format."""

    _schema = "LatencyTable"
    _schema_version = 1

    key: dict[str, Any]
    entries: dict[str, dict[str, Any]]
    whole_model: dict[str, Any]
    noise: dict[str, Any]
    seconds: float
    source: str
    provenance: dict[str, Any]

    @property
    def table_key(self) -> TableKey:
        try:
            return TableKey(**self.key)
        except TypeError as exc:
            raise LatencyTableError(f"latency table key {self.key!r} is malformed ({exc})") from None

    def check_for(self, key: TableKey, layers: Sequence[LayerSpec], *, where: str = "latency table") -> None:
        """Refuse this table for a run with ``key`` and ``layers`` (one line saying why), else return."""
        diff = self.table_key.mismatch(key)
        if diff is not None:
            raise LatencyTableError(
                f"{where} was measured for another device or runtime ({diff}); rebuild it on this one "
                "(delete the file or pass --rebuild-table)"
            )
        missing = sorted({s.signature() for s in layers} - set(self.entries))
        if missing:
            raise LatencyTableError(
                f"{where} is stale: it has no times for {len(missing)} layer shape(s) of this model "
                f"(e.g. {missing[0]}); rebuild it (delete the file or pass --rebuild-table)"
            )

    def layer_ms(self, layer: LayerSpec, cin: int, cout: int) -> float:
        """Interpolated time of ``layer`` at ``cin`` input and ``cout`` output channels."""
        e = self.entries[layer.signature()]
        if not e["in_grid"]:  # tied: one row over the output width
            return interpolate(e["out_grid"], e["ms"][0], cout)
        column = [interpolate(e["out_grid"], row, cout) for row in e["ms"]]
        return interpolate(e["in_grid"], column, cin)

    def model_ms(self, layers: Sequence[LayerSpec], counts: Mapping[str, int], sizes: Mapping[str, int]) -> float:
        """Sum of the layers' table times when groups keep ``counts`` (the allocator's cost)."""
        return sum(self.layer_ms(s, *s.widths(counts, sizes)) for s in layers)


def interpolate(grid: Sequence[int], values: Sequence[float], x: float) -> float:
    """Piecewise-linear through ``(grid, values)``; linear extrapolation outside, never below zero."""
    if len(grid) != len(values) or not grid:
        raise LatencyTableError(f"latency table entry has {len(grid)} grid points but {len(values)} times")
    if len(grid) == 1:
        return float(values[0])
    i = min(max(bisect.bisect_left(grid, x), 1), len(grid) - 1)
    x0, x1 = grid[i - 1], grid[i]
    y0, y1 = values[i - 1], values[i]
    return max(0.0, float(y0 + (y1 - y0) * (x - x0) / (x1 - x0)))


def noise_summary(rel_iqrs: Sequence[float]) -> dict[str, Any]:
    vals = [float(v) for v in rel_iqrs]
    return {
        "median_rel_iqr": statistics.median(vals) if vals else None,
        "max_rel_iqr": max(vals) if vals else None,
        "points": len(vals),
    }


def load_table(path: str | Path, key: TableKey, layers: Sequence[LayerSpec]) -> LatencyTable:
    """Read a table file (e.g. one brought back from a board) and check it fits this run."""
    raw = read_json(path, what="latency table")
    if not isinstance(raw, dict) or raw.get("schema") != LatencyTable.schema_name():
        raise LatencyTableError(
            f"{path} is not a latency table (schema {raw.get('schema') if isinstance(raw, dict) else None!r})"
        )
    try:
        table = LatencyTable.from_json(raw)
    except (CosepError, TypeError) as exc:
        raise LatencyTableError(f"latency table {path} is unreadable: {exc}") from None
    table.check_for(key, layers, where=f"latency table {path}")
    return table
