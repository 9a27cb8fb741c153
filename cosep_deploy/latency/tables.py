"""Which latency table a run uses: a given file, the on-disk cache, or a fresh measurement; and refusals.

ONNX Runtime targets are measured here and cached under ``<engine cache>/latency/``, one file per table
key (device identity, runtime version, precision, batch, threads) and model layout (layer signatures,
minimum counts, alignment, grid points). TensorRT targets are measured on the board (the deploy bundle's
table sweep, brought back with ``collect``): here such a table can only be read, and the closed loop,
which needs the target to measure on, does not run (the plan says the prediction is unmeasured).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cosep_deploy.errors import LatencyTableError
from cosep_deploy.latency.layers import LayerSpec
from cosep_deploy.latency.request import LatencyRequest, tensorrt_table_hint
from cosep_deploy.latency.table import LatencyTable, TableKey, load_table
from cosep_deploy.progress import Progress

__all__ = ["ort_table_key", "resolve_table", "table_cache_path"]


def ort_table_key(target: str, precision: str, batch: int, threads: int) -> TableKey:
    import onnxruntime as ort

    from cosep_deploy.latency.measure_ort import cpu_identity

    return TableKey(
        target=target,
        backend="onnxruntime",
        runtime_version=str(ort.__version__),
        device=cpu_identity(),
        precision=precision,
        batch=batch,
        threads=threads,
    )


def table_cache_path(
    key: TableKey,
    layers: Sequence[LayerSpec],
    mins: Mapping[str, int],
    round_to: int,
    points: int,
    cache_dir: str | None,
) -> Path:
    from cosep_deploy.env import engine_cache_root

    layout = json.dumps(
        {
            "layers": sorted(s.signature() for s in layers),
            "mins": dict(sorted(mins.items())),
            "round_to": round_to,
            "points": points,
        }
    )
    digest = hashlib.sha256(layout.encode()).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir else engine_cache_root() / "latency"
    return root / key.file_name().replace(".json", f"-{digest}.json")


def _tensorrt_table(request: LatencyRequest, target: Any, precision: str, layers: Sequence[LayerSpec]) -> LatencyTable:
    if request.table is None:
        if importlib.util.find_spec("tensorrt") is None:
            raise LatencyTableError(
                f"target {target.name!r} runs TensorRT, which is not installed on this machine: "
                + tensorrt_table_hint(target.name)
            )
        raise LatencyTableError(
            "measuring TensorRT latency tables on this machine is not supported yet: "
            + tensorrt_table_hint(target.name)
        )
    raw = LatencyTable.load(request.table) if Path(request.table).is_file() else None
    if raw is None:
        raise LatencyTableError(f"latency table not found: {request.table}")
    key = raw.table_key
    wanted = {"target": target.name, "backend": "tensorrt", "precision": precision, "batch": request.batch}
    for field, value in wanted.items():
        if getattr(key, field) != value:
            raise LatencyTableError(
                f"latency table {request.table} was measured for another run ({field}: the table has "
                f"{getattr(key, field)!r}, this run needs {value!r}); {tensorrt_table_hint(target.name)}"
            )
    if not target.supports_tensorrt(key.runtime_version):
        raise LatencyTableError(
            f"latency table {request.table} was measured with TensorRT {key.runtime_version}, outside target "
            f"{target.name!r}'s range {target.tensorrt}"
        )
    raw.check_for(key, layers, where=f"latency table {request.table}")  # stale: a layer shape without times
    return raw


def resolve_table(
    request: LatencyRequest,
    layers: Sequence[LayerSpec],
    *,
    mins: Mapping[str, int],
    sizes: Mapping[str, int],
    round_to: int,
    dense_onnx: Callable[[], Path],
    progress: Progress,
) -> tuple[LatencyTable, dict[str, Any]]:
    """The table for this run and a description for the plan (source, path, key, ``measurable``: whether
    the closed loop can measure on this machine). ``dense_onnx()`` exports the dense model (only called
    when a table is measured: its whole time gives the share the table explains)."""
    from cosep_deploy.targets import get_target

    target = get_target(request.target)
    precision = request.precision or target.default_precision
    target.round_to_for(precision)  # an unknown precision for this target: one clear error
    if target.backend == "tensorrt":
        table = _tensorrt_table(request, target, precision, layers)
        return table, {"source": "file", "path": request.table, "key": table.key, "measurable": False}
    if precision != "fp32":
        raise LatencyTableError(f"ONNX Runtime latency tables are measured in fp32 only here, not {precision!r}")
    key = ort_table_key(target.name, precision, request.batch, request.threads)
    if request.table is not None:
        table = load_table(request.table, key, layers)
        return table, {"source": "file", "path": request.table, "key": table.key, "measurable": True}
    path = table_cache_path(key, layers, mins, round_to, request.points, request.cache_dir)
    if path.is_file() and not request.rebuild_table:
        table = load_table(path, key, layers)
        return table, {"source": "cache", "path": str(path), "key": table.key, "measurable": True}
    from cosep_deploy.latency.measure_ort import build_table_ort, whole_model_ms

    dense_ms = whole_model_ms(dense_onnx(), request.batch, request.threads)
    table = build_table_ort(
        layers,
        key,
        min_counts=mins,
        sizes=sizes,
        round_to=round_to,
        points=request.points,
        dense_ms=dense_ms,
        progress=progress,
    )
    table.save(path)
    return table, {
        "source": "measured",
        "path": str(path),
        "key": table.key,
        "measurable": True,
        "seconds": table.seconds,
    }
