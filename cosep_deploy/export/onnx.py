"""ONNX export with a dynamic batch dimension, checked, simplified and validated against PyTorch.

No export without validation: the exported file is run in ONNX Runtime on real inputs and compared with
the PyTorch model output by output; a failure raises :class:`ExportValidationError` and leaves no file.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cosep_deploy.artifacts import JsonArtifact, atomic_write_bytes, sha256_file
from cosep_deploy.errors import ConfigError, ExportError, ExportValidationError
from cosep_deploy.onnx_compat import DEFAULT_OPSET

__all__ = ["TOLERANCES", "ExportConfig", "OnnxArtifact", "onnx_from_model", "validate_onnx"]

# (rtol, atol) for comparing an ONNX Runtime output with the PyTorch reference, per precision.
TOLERANCES: dict[str, tuple[float, float]] = {"fp32": (1e-3, 1e-4), "fp16": (1e-2, 1e-2), "int8": (1e-1, 1e-1)}
MIN_OPSET = 17


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExportConfig:
    """``opset``: 17 by default, the newest opset TensorRT 8.5/8.6 parse (every shipped TensorRT target has one
    of them in range). ``tensorrt_releases``: refuse a file some of these releases cannot parse (operator and
    opset check of :mod:`cosep_deploy.onnx_compat`); empty means no check."""

    opset: int = DEFAULT_OPSET
    tensorrt_releases: tuple[str, ...] = ()
    input_name: str = "input"
    output_name: str = "logits"
    max_batch: int = 1024
    # simplification (constant folding, dead-node and identity elimination) is the exporter's own
    # onnxscript optimizer (``optimize=True``); ONNX Runtime and TensorRT fuse Conv+BN themselves

    def __post_init__(self) -> None:
        if self.opset < MIN_OPSET:
            raise ConfigError(f"opset {self.opset} is too old: use {MIN_OPSET} or newer")


@dataclasses.dataclass(frozen=True, kw_only=True)
class OnnxArtifact(JsonArtifact):
    """An exported ONNX file and what it is: written as ``<name>.onnx.json`` beside the file."""

    _schema = "OnnxArtifact"
    _schema_version = 1

    path: str  # file name, relative to the artifact's directory
    sha256: str
    precision: str
    opset: int
    input_name: str
    input_shape: list[Any]  # ["batch", C, H, W]
    output_names: list[str]
    source: dict[str, Any]  # what it was exported from (model spec, weights sha256)
    validation: dict[str, Any]  # max abs/rel error vs the reference, tolerance, samples
    seconds: float
    provenance: dict[str, Any]


def onnx_from_model(
    model: nn.Module,
    sample: torch.Tensor,
    out_path: str | os.PathLike[str],
    config: ExportConfig | None = None,
    *,
    source: dict[str, Any] | None = None,
) -> OnnxArtifact:
    """Export ``model`` to ``out_path`` with a dynamic batch and validate it on ``sample`` (real inputs).

    Writes ``out_path`` and ``out_path + '.json'`` atomically; on any failure neither exists.
    """
    from cosep_deploy.artifacts import provenance

    cfg = config or ExportConfig()
    out = Path(out_path)
    model = model.eval()
    start = time.perf_counter()
    proto = _checked_export(model, sample, cfg)
    data = proto.SerializeToString()
    errors = validate_onnx(data, model, sample, precision="fp32", input_name=cfg.input_name)
    atomic_write_bytes(out, data)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    artifact = OnnxArtifact(
        path=out.name,
        sha256=sha256_file(out),
        precision="fp32",
        opset=cfg.opset,
        input_name=cfg.input_name,
        input_shape=[d.dim_param or int(d.dim_value) for d in dims],
        output_names=[o.name for o in proto.graph.output],
        source=source or {},
        validation=errors,
        seconds=round(time.perf_counter() - start, 3),
        provenance=provenance(),
    )
    try:
        artifact.save(str(out) + ".json")
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return artifact


def _checked_export(model: nn.Module, sample: torch.Tensor, cfg: ExportConfig) -> Any:
    """The model as an ONNX ``ModelProto`` at ``cfg.opset`` with a dynamic batch, passing the ONNX checker and,
    where ``cfg.tensorrt_releases`` names some, parseable by each of them."""
    import onnx

    batch = torch.export.Dim("batch", min=1, max=cfg.max_batch)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_file = Path(tmp) / "model.onnx"
        try:
            torch.onnx.export(
                model,
                (sample[:2] if sample.shape[0] >= 2 else sample,),
                str(tmp_file),
                input_names=[cfg.input_name],
                output_names=[cfg.output_name],
                # torch builds opset 18 and its own down-conversion fails quietly on ReduceMean: export 18
                # and convert the optimized model here (_at_opset), which works
                opset_version=max(cfg.opset, 18),
                dynamic_shapes=({0: batch},),
                dynamo=True,
                optimize=True,
                external_data=False,
                verbose=False,
            )
        except Exception as exc:  # the exporter raises many types; all mean "cannot export"
            raise ExportError(f"torch.onnx.export failed for {type(model).__name__}: {exc}".splitlines()[0]) from exc
        proto = _at_opset(onnx.load(str(tmp_file)), cfg.opset)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ExportError(f"exported ONNX fails the checker: {exc}".splitlines()[0]) from exc
    if cfg.tensorrt_releases:
        from cosep_deploy.onnx_compat import require_compatible

        require_compatible(proto, cfg.tensorrt_releases, what=f"the export of {type(model).__name__}")
    return proto


def _opset_of(proto: Any) -> int:
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def _at_opset(proto: Any, opset: int) -> Any:
    """``proto`` converted to ``opset`` when the exporter wrote a newer one.

    torch's dynamo exporter builds opset 18 and converts down only where ONNX's version converter succeeds;
    when it fails (ReduceMean's ``axes`` computed by a node at export time) it silently keeps 18, which
    TensorRT 8.5/8.6 cannot parse. After the exporter's optimizer the axes are initializers, so converting
    the final model works; the converter leaves opset-18 attributes (``noop_with_empty_axes``) on the
    reductions, which are dropped when they hold their default, and initializers left unused are removed.
    """
    import onnx
    from onnx import version_converter

    if _opset_of(proto) == opset:
        return proto
    try:
        out = version_converter.convert_version(proto, opset)
    except Exception as exc:  # the converter raises RuntimeError/ValueError with C++ messages
        raise ExportError(
            f"the exporter wrote opset {_opset_of(proto)} and it cannot be converted to opset {opset}: "
            f"{exc}".splitlines()[0]
        ) from exc
    for node in out.graph.node:
        if node.op_type.startswith("Reduce"):
            for attr in list(node.attribute):
                if attr.name == "noop_with_empty_axes":
                    if onnx.helper.get_attribute_value(attr):
                        raise ExportError(f"{node.name}: noop_with_empty_axes=1 has no opset-{opset} form")
                    node.attribute.remove(attr)
    used = {name for node in out.graph.node for name in node.input} | {o.name for o in out.graph.output}
    for init in [i for i in out.graph.initializer if i.name not in used]:
        out.graph.initializer.remove(init)
    if _opset_of(out) != opset:
        raise ExportError(f"the exported file has opset {_opset_of(out)}, not the requested {opset}")
    return out


def validate_onnx(
    onnx_bytes: bytes,
    model: nn.Module,
    sample: torch.Tensor,
    *,
    precision: str,
    input_name: str = "input",
) -> dict[str, Any]:
    """Run the ONNX in ONNX Runtime (CPU) and compare with the PyTorch output on ``sample``.

    Returns the error statistics; raises :class:`ExportValidationError` listing every failing output.
    """
    import onnxruntime as ort

    rtol, atol = TOLERANCES[precision]
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = session.run(None, {input_name: sample.detach().cpu().numpy().astype(np.float32)})
    with torch.no_grad():
        ref = model.eval()(sample)
    refs = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    stats: dict[str, Any] = {"precision": precision, "rtol": rtol, "atol": atol, "samples": int(sample.shape[0])}
    failures = []
    for i, (r, g) in enumerate(zip(refs, got, strict=True)):
        r_np = r.detach().cpu().numpy().astype(np.float64)
        g_np = np.asarray(g, dtype=np.float64)
        abs_err = np.abs(r_np - g_np)
        name = session.get_outputs()[i].name
        stats[name] = {
            "max_abs": float(abs_err.max()),
            "max_rel": float((abs_err / (np.abs(r_np) + 1e-12)).max()),
            "argmax_agreement": float((r_np.argmax(-1) == g_np.argmax(-1)).mean()) if r_np.ndim > 1 else 1.0,
        }
        if not np.allclose(g_np, r_np, rtol=rtol, atol=atol):
            failures.append(f"{name}: max abs error {abs_err.max():.3g} exceeds rtol={rtol}, atol={atol}")
    if failures:
        raise ExportValidationError("ONNX output differs from PyTorch: " + "; ".join(failures))
    return stats
