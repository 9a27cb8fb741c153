"""Precision decided in the ONNX file: fp16 (mixed) and int8 (Q/DQ) variants of an fp32 export.

TensorRT 11 removed the builder's precision flags and INT8 calibrators: precision must live in the ONNX
(strongly typed networks). NVIDIA ModelOpt's ONNX tools would do this, but ``nvidia-modelopt[onnx]``
cannot share an environment with ``onnxruntime``: it pulls ``onnxruntime-gpu`` (the same ``onnxruntime``
module, another version) and an older ``onnx``. So we use ONNX Runtime's own, maintained converters:

- fp16: ``onnxruntime.transformers.float16.convert_float_to_float16`` with fp32 inputs/outputs and the
  numerically sensitive ops (``FP16_BLOCKED_OPS``: reductions, softmax, normalisations) kept in fp32.
- int8: ``onnxruntime.quantization.quantize_static`` in QDQ format (QuantizeLinear/DequantizeLinear
  pairs, what TensorRT's explicit-quantization path reads), symmetric int8 activations and weights,
  per-channel weights, calibrated on a class-balanced set of real images (see :mod:`.calibration`).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

from ..artifacts import atomic_write_bytes, provenance, sha256_file
from ..errors import ConfigError, ExportError
from .calibration import CalibrationSet
from .onnx import OnnxArtifact

__all__ = ["FP16_BLOCKED_OPS", "PrecisionConfig", "onnx_precision", "precision_variants_from_onnx"]

FP16_BLOCKED_OPS = ("ReduceMean", "ReduceSum", "Softmax", "LogSoftmax", "LayerNormalization", "Exp", "Pow")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrecisionConfig:
    precisions: tuple[str, ...] = ("fp16", "int8")
    calibration_per_class: int = 32
    calibration_method: str = "minmax"
    per_channel: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [p for p in self.precisions if p not in ("fp16", "int8")]
        if bad:
            raise ConfigError(f"unknown precision(s) {bad}: choose from fp16, int8 (fp32 is the export itself)")
        if self.calibration_method not in CALIBRATION_METHODS:
            raise ConfigError(
                f"calibration method must be one of {CALIBRATION_METHODS}, got {self.calibration_method!r}"
            )


def onnx_precision(path: str | Path) -> str:
    """What an ONNX file computes in: int8 (Q/DQ nodes), fp16 (fp16 initializers or casts), else fp32."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    ops = {n.op_type for n in model.graph.node}
    if {"QuantizeLinear", "DequantizeLinear"} & ops:
        return "int8"
    fp16 = onnx.TensorProto.FLOAT16
    if any(t.data_type == fp16 for t in model.graph.initializer):
        return "fp16"
    return "fp32"


def _fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True, op_block_list=list(FP16_BLOCKED_OPS))
    atomic_write_bytes(dst, model.SerializeToString())


def _int8(src: Path, dst: Path, calibration: CalibrationSet, cfg: PrecisionConfig, input_name: str) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared))  # shape inference + graph cleanup, as ORT recommends
        out = Path(tmp) / "int8.onnx"
        quantize_static(
            str(prepared),
            str(out),
            calibration.data_reader(input_name),
            quant_format=QuantFormat.QDQ,
            per_channel=cfg.per_channel,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[cfg.calibration_method],
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
        )
        atomic_write_bytes(dst, out.read_bytes())


def precision_variants_from_onnx(
    fp32_onnx: str | Path,
    out_dir: str | Path,
    config: PrecisionConfig | None = None,
    *,
    calibration: CalibrationSet | None = None,
) -> dict[str, OnnxArtifact]:
    """Write ``<stem>.fp16.onnx`` / ``<stem>.int8.onnx`` (+ ``.json``) beside each other in ``out_dir``.

    Each file is written atomically; if a conversion fails no file of that precision is left behind.
    """
    cfg = config or PrecisionConfig()
    src = Path(fp32_onnx)
    base = OnnxArtifact.load(str(src) + ".json")
    if "int8" in cfg.precisions and calibration is None:
        raise ConfigError("int8 needs a calibration set (class-balanced real images): none was given")
    out: dict[str, OnnxArtifact] = {}
    for precision in cfg.precisions:
        dst = Path(out_dir) / f"{src.stem}.{precision}.onnx"
        start = time.perf_counter()
        try:
            if precision == "fp16":
                _fp16(src, dst)
            else:
                assert calibration is not None
                _int8(src, dst, calibration, cfg, base.input_name)
        except (ConfigError, ExportError):
            dst.unlink(missing_ok=True)
            raise
        except Exception as exc:  # converter errors come in many types
            dst.unlink(missing_ok=True)
            raise ExportError(f"{precision} conversion of {src.name} failed: {exc}".splitlines()[0]) from exc
        source = {
            "fp32_onnx": src.name,
            "fp32_sha256": sha256_file(src),
            "converter": _converter(precision),
            **(
                {
                    "calibration": calibration.to_json(),
                    "calibration_method": cfg.calibration_method,
                    "per_channel": cfg.per_channel,
                }
                if precision == "int8" and calibration
                else {}
            ),
        }
        art = dataclasses.replace(
            base,
            path=dst.name,
            sha256=sha256_file(dst),
            precision=precision,
            source={**base.source, **source},
            validation={},
            seconds=round(time.perf_counter() - start, 3),
            provenance=provenance(),
        )
        art.save(str(dst) + ".json")
        out[precision] = art
    return out


def _converter(precision: str) -> dict[str, Any]:
    import onnxruntime as ort

    name = "onnxruntime.transformers.float16" if precision == "fp16" else "onnxruntime.quantization (QDQ, symmetric)"
    return {"name": name, "onnxruntime": str(ort.__version__)}
