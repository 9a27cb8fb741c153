"""Which TensorRT releases can parse an ONNX file: its opset and operators against each release's parser.

TensorRT's ONNX parser reads a fixed opset range and a fixed operator set per release; a file past either
fails on the board, minutes into a build, with a parser error. The table in ``onnx_tensorrt_support.json``
(package data) records, per release, the opset range and the operators onnx-tensorrt's operator matrix
(``docs/operators.md`` of that release) marks as supported; its ``source`` field says which document each
row was read from. A release key covers every version from it up to the next key ("10.3" covers 10.3 to
10.12). A target profile names the releases it supports (``tensorrt_releases``); :func:`check_onnx` gives a
verdict per release and :func:`require_compatible` refuses a file that cannot work on one of them, naming
the operator, the release and what to do. Export, build and bundle call it; ``cosep-deploy check`` prints it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cosep_deploy.errors import ConfigError, ExportError

__all__ = [
    "DEFAULT_OPSET",
    "ReleaseSupport",
    "ReleaseVerdict",
    "check_onnx",
    "opset_for_releases",
    "release_support",
    "require_compatible",
    "support_table",
]

TABLE_FILE = Path(__file__).resolve().parent / "onnx_tensorrt_support.json"
# Every shipped TensorRT target includes 8.5 or 8.6, whose parsers stop at opset 17.
DEFAULT_OPSET = 17
_DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclasses.dataclass(frozen=True)
class ReleaseSupport:
    """One row of the table: what the ONNX parser of ``release`` (and later releases up to the next row) reads."""

    release: str
    opset_min: int
    opset_max: int
    operators: frozenset[str]
    source: str


def _key(version: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", version)
    if not parts:
        raise ConfigError(f"cannot read a TensorRT version from {version!r}")
    return tuple(int(p) for p in parts)


@functools.cache
def support_table() -> tuple[ReleaseSupport, ...]:
    """The table, oldest release first."""
    data = json.loads(TABLE_FILE.read_text(encoding="utf-8"))
    rows = [
        ReleaseSupport(
            release=str(r["release"]),
            opset_min=int(r["opset_min"]),
            opset_max=int(r["opset_max"]),
            operators=frozenset(r["operators"]),
            source=str(r["source"]),
        )
        for r in data["releases"]
    ]
    return tuple(sorted(rows, key=lambda r: _key(r.release)))


def release_support(version: str) -> ReleaseSupport:
    """The row covering TensorRT ``version`` ("10.3.0.30" -> row "10.3"); versions older than the table are
    refused (no parser documentation for them here)."""
    have = _key(version)
    best: ReleaseSupport | None = None
    for row in support_table():
        row_key = _key(row.release)
        if have[: len(row_key)] >= row_key:
            best = row
    if best is None:
        oldest = support_table()[0].release
        raise ConfigError(f"TensorRT {version} is older than every release in the ONNX support table (from {oldest})")
    return best


def opset_for_releases(releases: Iterable[str]) -> int:
    """The newest opset every release in ``releases`` parses (17 while an 8.x release is among them)."""
    rows = [release_support(r) for r in releases]
    if not rows:
        return DEFAULT_OPSET
    low, high = max(r.opset_min for r in rows), min(r.opset_max for r in rows)
    if low > high:
        raise ConfigError(f"no opset is read by every release of {sorted(r.release for r in rows)}")
    return high


@dataclasses.dataclass(frozen=True)
class ReleaseVerdict:
    """Whether TensorRT ``release`` can parse the file; ``problems`` says why not, one line each."""

    release: str
    table_row: str
    ok: bool
    problems: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release, "table_row": self.table_row, "ok": self.ok, "problems": list(self.problems)}


def _graph_ops(graph: Any, out: dict[tuple[str, str], str]) -> None:
    for node in graph.node:
        out.setdefault((node.domain or "", node.op_type), node.name or node.op_type)
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _graph_ops(sub, out)


def _model_facts(model: Any) -> tuple[int | None, dict[tuple[str, str], str]]:
    opset = next((int(o.version) for o in model.opset_import if o.domain in _DEFAULT_DOMAINS), None)
    ops: dict[tuple[str, str], str] = {}
    _graph_ops(model.graph, ops)
    local = {(f.domain, f.name) for f in model.functions}
    return opset, {k: v for k, v in ops.items() if k not in local}


def _load(model_or_path: Any) -> tuple[Any, str]:
    if isinstance(model_or_path, (str, os.PathLike)):
        import onnx

        path = Path(model_or_path)
        if not path.is_file():
            raise ConfigError(f"ONNX file {path} not found")
        try:
            return onnx.load(str(path), load_external_data=False), str(path)
        except Exception as exc:  # protobuf raises DecodeError and others
            raise ConfigError(f"{path} is not an ONNX file: {exc}".splitlines()[0]) from exc
    return model_or_path, "the ONNX model"


def check_onnx(model_or_path: Any, releases: Sequence[str]) -> list[ReleaseVerdict]:
    """A verdict per TensorRT release for an ONNX file (path) or loaded ``onnx.ModelProto``."""
    model, _ = _load(model_or_path)
    opset, ops = _model_facts(model)
    verdicts = []
    for release in releases:
        row = release_support(release)
        problems = []
        if opset is None:
            problems.append("the file imports no default-domain opset")
        elif not row.opset_min <= opset <= row.opset_max:
            problems.append(
                f"opset {opset} is outside the opsets TensorRT {release} parses ({row.opset_min}-{row.opset_max}): "
                f"export with --opset {min(max(opset, row.opset_min), row.opset_max)}"
            )
        for (domain, op), node in sorted(ops.items()):
            if domain not in _DEFAULT_DOMAINS:
                problems.append(
                    f"operator {domain}::{op} (node {node!r}) is not an ONNX operator: TensorRT {release} needs a "
                    "plugin for it; export without custom operators"
                )
            elif op not in row.operators:
                problems.append(
                    f"operator {op} (node {node!r}) is not supported by TensorRT {release}'s ONNX parser: replace "
                    "the layer that produces it, or drop this release from the target's tensorrt_releases"
                )
        verdicts.append(ReleaseVerdict(release, row.release, not problems, tuple(problems)))
    return verdicts


def require_compatible(model_or_path: Any, releases: Sequence[str], *, what: str = "") -> list[ReleaseVerdict]:
    """Raise :class:`ExportError` with the first problem of every release that cannot parse the file."""
    model, name = _load(model_or_path)
    verdicts = check_onnx(model, releases)
    bad = [v for v in verdicts if not v.ok]
    if bad:
        lines = "; ".join(f"TensorRT {v.release}: {v.problems[0]}" for v in bad)
        raise ExportError(f"{what or name} cannot be built by every TensorRT release in range: {lines}")
    return verdicts
