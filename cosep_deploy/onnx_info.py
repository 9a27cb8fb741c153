"""Facts read from an ONNX file without running it (what precision it computes in), shared by export,
the backends and comparison so that none of them imports another for it."""

from __future__ import annotations

import os
from pathlib import Path

from cosep_deploy.errors import ConfigError, ExportError

__all__ = ["onnx_precision"]


def onnx_precision(path: str | os.PathLike[str]) -> str:
    """What an ONNX file computes in: ``int8`` (Q/DQ nodes), ``fp16`` (fp16 initializers, inputs or Casts
    to fp16), else ``fp32``."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"ONNX file not found: {p}")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf raises its own DecodeError types
        raise ExportError(f"{p} is not a readable ONNX model: {exc}".splitlines()[0]) from exc
    graph = model.graph
    if {"QuantizeLinear", "DequantizeLinear"} & {n.op_type for n in graph.node}:
        return "int8"
    fp16 = onnx.TensorProto.FLOAT16
    casts_to_fp16 = any(
        n.op_type == "Cast" and any(a.name == "to" and a.i == fp16 for a in n.attribute) for n in graph.node
    )
    if (
        casts_to_fp16
        or any(t.data_type == fp16 for t in graph.initializer)
        or any(i.type.tensor_type.elem_type == fp16 for i in graph.input)
    ):
        return "fp16"
    return "fp32"
