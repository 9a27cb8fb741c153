"""Per-layer time of dense and pruned engines side by side: where the time goes, and where pruning paid.

:func:`compare_layer_profiles` pairs the layers of a dense and a pruned :class:`~.layer_profile.LayerProfile`
(same name, then the same normalised name, then the same kind in execution order) and reports what stays
unpaired instead of hiding it. The result, :class:`LayersReport`, is the run's ``bench/layers.json``. Reading
the profilers' output is in :mod:`cosep_deploy.bench.layer_profile`; taking the profiles in
:mod:`cosep_deploy.bench.layer_sources`; rendering them as tables in :mod:`cosep_deploy.bench.layer_tables`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cosep_deploy.artifacts import JsonArtifact, provenance
from cosep_deploy.bench.layer_profile import LayerProfile, ProfiledLayer
from cosep_deploy.errors import BenchError, InternalError

__all__ = ["LayersReport", "compare_layer_profiles", "normalise_layer_name"]


def normalise_layer_name(name: str) -> str:
    """A name with the decorations of one engine build removed, to pair layers whose exact names differ:
    ONNX Runtime's ``_nchwc`` and ``_token_N`` suffixes and ``node_`` prefixes, TensorRT's ``PWN(...)``
    wrappers, case and punctuation."""
    n = name.lower()
    n = re.sub(r"_token_\d+", "", n)
    n = re.sub(r"_nchwc\b", "", n)
    n = re.sub(r"\bpwn\(", "(", n)
    n = re.sub(r"\bnode_", "", n)
    return re.sub(r"[^0-9a-z+]+", "_", n).strip("_")


def _speedup(dense: float | None, pruned: float | None) -> float | None:
    return dense / pruned if dense is not None and pruned is not None and pruned > 0 else None


def _pairs(dense: Sequence[ProfiledLayer], pruned: Sequence[ProfiledLayer]) -> dict[int, tuple[int, str]]:
    """Dense index -> (pruned index, how): exact name, then unique normalised name, then by kind in order
    where both sides have the same number of that kind left."""
    out: dict[int, tuple[int, str]] = {}
    by_name = {p.name: j for j, p in enumerate(pruned)}
    for i, d in enumerate(dense):
        if d.name in by_name:
            out[i] = (by_name[d.name], "name")
    used = {j for j, _ in out.values()}

    def unique_norms(layers: Sequence[ProfiledLayer], skip: Iterable[int]) -> dict[str, int]:
        seen: dict[str, list[int]] = {}
        skipped = set(skip)
        for k, layer in enumerate(layers):
            if k not in skipped:
                seen.setdefault(normalise_layer_name(layer.name), []).append(k)
        return {n: ks[0] for n, ks in seen.items() if len(ks) == 1}

    left_norms = unique_norms(pruned, used)
    for norm, i in unique_norms(dense, out).items():
        if norm in left_norms:
            out[i] = (left_norms[norm], "normalised name")
    used = {j for j, _ in out.values()}
    by_kind: dict[str, tuple[list[int], list[int]]] = {}
    for i, d in enumerate(dense):
        if i not in out:
            by_kind.setdefault(d.kind, ([], []))[0].append(i)
    for j, p in enumerate(pruned):
        if j not in used:
            by_kind.setdefault(p.kind, ([], []))[1].append(j)
    for dense_left, pruned_left in by_kind.values():
        if len(dense_left) == len(pruned_left):
            out.update({i: (j, "op-type order") for i, j in zip(dense_left, pruned_left, strict=True)})
    return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class LayersReport(JsonArtifact):
    """Dense vs pruned per layer (``rows``, dense execution order, then layers only the pruned engine has),
    per kind of layer (``by_kind``, largest dense time first) and in total; written as ``layers.json``."""

    _schema = "LayersReport"
    _schema_version = 1

    source: str
    statistic: str  # what the *_ms figures are: "median" or "mean" per iteration (rows keep both)
    settings: dict[str, Any]
    rows: list[dict[str, Any]]
    by_kind: list[dict[str, Any]]
    totals: dict[str, Any]
    unmatched: dict[str, list[str]]  # {"dense": [...], "pruned": [...]}: layer names left unpaired
    dense: dict[str, Any]  # the two LayerProfiles
    pruned: dict[str, Any]
    provenance: dict[str, Any]

    def top(self, n: int) -> list[dict[str, Any]]:
        from cosep_deploy.bench.layer_tables import top_rows

        return top_rows(self.rows, n)


def compare_layer_profiles(
    dense: LayerProfile,
    pruned: LayerProfile,
    *,
    settings: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> LayersReport:
    """Pair the layers of two profiles and summarise them; ``inputs`` (hashes of what was profiled) and
    ``settings`` are recorded with the result.

    Times are medians per iteration where both profiles have them (ONNX Runtime, trtexec 8.6+), as one slow
    run of a layer (a thread woken late on a busy machine) would dominate its mean; the means stay in each row.
    """
    if dense.source != pruned.source:
        raise BenchError(f"cannot compare a {dense.source} profile with a {pruned.source} profile")
    stat = "median" if dense.statistic == pruned.statistic == "median" else "mean"
    d_total = dense.total_ms(stat)
    pairs = _pairs(dense.layers, pruned.layers)
    paired = {j for j, _ in pairs.values()}
    rows = []
    for i, d in enumerate(dense.layers):
        j, how = pairs.get(i, (-1, "dense only"))
        rows.append(_row(d, pruned.layers[j] if j >= 0 else None, how, stat, d_total))
    rows += [_row(None, p, "pruned only", stat, d_total) for j, p in enumerate(pruned.layers) if j not in paired]
    return LayersReport(
        source=dense.source,
        statistic=stat,
        settings=dict(settings or {}),
        rows=rows,
        by_kind=_kinds(dense, pruned, stat),
        totals=_totals(rows, dense, pruned, stat),
        unmatched={
            "dense": [r["dense_name"] for r in rows if r["pruned_ms"] is None],
            "pruned": [r["pruned_name"] for r in rows if r["dense_ms"] is None],
        },
        dense=dense.to_json(),
        pruned=pruned.to_json(),
        provenance=provenance(**(inputs or {})),
    )


def _row(d: ProfiledLayer | None, p: ProfiledLayer | None, how: str, stat: str, d_total: float) -> dict[str, Any]:
    """One row of the comparison: a paired layer, or one only the dense (``p`` None) or pruned engine has."""
    first = d or p
    if first is None:
        raise InternalError("a layer row needs a dense or a pruned layer")
    name = first.name if d is None or p is None or d.name == p.name else f"{d.name} | {p.name}"
    d_ms, p_ms = (d.time_ms(stat) if d else None), (p.time_ms(stat) if p else None)
    return {
        "name": name,
        "dense_name": d.name if d else None,
        "pruned_name": p.name if p else None,
        "op_type": first.op_type,
        "kind": first.kind,
        "dense_ms": d_ms,
        "pruned_ms": p_ms,
        "speedup": _speedup(d_ms, p_ms),
        "matched_by": how,
        "dense_mean_ms": d.mean_ms if d else None,
        "pruned_mean_ms": p.mean_ms if p else None,
        "dense_median_ms": d.median_ms if d else None,
        "pruned_median_ms": p.median_ms if p else None,
        "dense_share": d_ms / d_total if d_ms is not None and d_total > 0 else None,
    }


def _kinds(dense: LayerProfile, pruned: LayerProfile, stat: str) -> list[dict[str, Any]]:
    """Time per kind of layer, the kind with the most dense time first."""
    d_kinds, p_kinds = dense.by_kind(stat), pruned.by_kind(stat)
    d_total = dense.total_ms(stat)
    order = sorted(dict.fromkeys([*d_kinds, *p_kinds]), key=lambda k: (-d_kinds.get(k, 0.0), -p_kinds.get(k, 0.0)))
    return [
        {
            "kind": kind,
            "dense_layers": sum(layer.kind == kind for layer in dense.layers),
            "pruned_layers": sum(layer.kind == kind for layer in pruned.layers),
            "dense_ms": d_kinds.get(kind) or 0.0,
            "pruned_ms": p_kinds.get(kind) or 0.0,
            "speedup": _speedup(d_kinds.get(kind), p_kinds.get(kind)),
            "dense_share": (d_kinds.get(kind) or 0.0) / d_total if d_total > 0 else None,
        }
        for kind in order
    ]


def _totals(rows: list[dict[str, Any]], dense: LayerProfile, pruned: LayerProfile, stat: str) -> dict[str, Any]:
    """Sums over all layers and over the paired ones (what the unpaired layers leave out)."""
    d_total, p_total = dense.total_ms(stat), pruned.total_ms(stat)
    matched = [r for r in rows if r["dense_ms"] is not None and r["pruned_ms"] is not None]
    m_dense, m_pruned = sum(r["dense_ms"] for r in matched), sum(r["pruned_ms"] for r in matched)
    return {
        "dense_ms": d_total,
        "pruned_ms": p_total,
        "speedup": _speedup(d_total, p_total),
        "matched_layers": len(matched),
        "matched_dense_ms": m_dense,
        "matched_pruned_ms": m_pruned,
        "matched_speedup": _speedup(m_dense, m_pruned),
        "unmatched_dense_ms": d_total - m_dense,
        "unmatched_pruned_ms": p_total - m_pruned,
        "dense_run_ms": dense.run_ms,
        "pruned_run_ms": pruned.run_ms,
    }
