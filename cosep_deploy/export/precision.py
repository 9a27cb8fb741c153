"""Precision decided in the ONNX file: fp16 (mixed) and int8 (Q/DQ) variants of a validated fp32 export.

TensorRT 11 removed the builder's precision flags and INT8 calibrators: every network is strongly typed, so
the precision must be in the ONNX itself. NVIDIA ModelOpt's ONNX tools would write it, but
``nvidia-modelopt[onnx]`` (0.47) cannot share one clean environment with ``onnxruntime``: it pulls
``onnxruntime-gpu`` 1.24 (the same ``onnxruntime`` module at another version), downgrades ``onnx`` to 1.21 and
adds ``cupy-cuda12x``. So the default converters are ONNX Runtime's own:

- fp16: ``onnxruntime.transformers.float16.convert_float_to_float16`` with fp32 inputs and outputs
  (``keep_io_types``) and the numerically sensitive ops kept in fp32 (:data:`FP16_BLOCKED_OPS`, added to ORT's
  own block list): reductions (a sum over 7x7x2048 values loses fp16 precision, or overflows at 65504),
  softmax/exp/log (narrow fp16 range) and normalisations (variances underflow). Convolutions, GEMMs, ReLU,
  adds and pooling maxima stay fp16; TensorRT accumulates fp16 convolutions in fp32 anyway.
  Measured here: ONNX Runtime's CPU provider (x86) has no fp16 kernels for these ops; it inserts Casts and
  computes in fp32, so CPU accuracy of the fp16 file reflects fp16 weights only. TensorRT runs it in fp16.
- int8: ``onnxruntime.quantization.quantize_static`` in QDQ format after ``quant_pre_process`` (shape
  inference, basic graph cleanup): QuantizeLinear/DequantizeLinear pairs, what TensorRT's explicit
  quantization reads. Symmetric int8 activations and weights (TensorRT requires zero points of 0),
  per-channel weights, calibrated on a class-balanced set of real images (:mod:`.calibration`). Biases stay
  fp32 (``QuantizeBias=False``): TensorRT's parser rejects a DequantizeLinear of int32 biases
  (NVIDIA/TensorRT#3360, onnx/onnx-tensorrt#850).
- int8 remainder: TensorRT 10.x/11.x build strongly typed networks, which compute everything outside the Q/DQ
  pairs in the type the file gives it. Left in fp32, an "int8" engine runs its remainder in fp32: slower than
  TensorRT 8's INT8+FP16 flags, and not comparable across releases. So after quantization the remainder is
  converted to fp16 with the same converter as the fp16 variant (fp32 inputs and outputs, the sensitive ops of
  :data:`FP16_BLOCKED_OPS` kept fp32). From opset 19, Q/DQ scales become fp16 too, so DequantizeLinear yields
  fp16 directly (the form ModelOpt writes with ``high_precision_dtype="fp16"``); before 19 the Q/DQ operators
  take fp32 scales only, so they stay fp32 with Casts around them. ``int8_remainder="fp32"`` keeps the old file.

``quantizer="modelopt"`` uses ``modelopt.onnx.quantization`` for int8 instead, where it is installed (in a
separate environment). Every variant is validated against the fp32 file in ONNX Runtime before it is kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from cosep_deploy.artifacts import ensure_writable_dir, provenance, sha256_file
from cosep_deploy.errors import ConfigError, CosepError, ExportError, InternalError
from cosep_deploy.export.calibration import CalibrationSet
from cosep_deploy.export.onnx import OnnxArtifact
from cosep_deploy.onnx_info import onnx_precision

__all__ = [
    "CALIBRATION_METHODS",
    "FP16_BLOCKED_OPS",
    "PRECISIONS",
    "QUANTIZERS",
    "PrecisionConfig",
    "onnx_precision",
    "precision_variants_from_onnx",
]

PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
QUANTIZERS = ("onnxruntime", "modelopt")
FP16_BLOCKED_OPS = (
    "GlobalAveragePool",
    "ReduceMean",
    "ReduceSum",
    "ReduceSumSquare",
    "ReduceL2",
    "ReduceLogSumExp",
    "Softmax",
    "LogSoftmax",
    "LayerNormalization",
    "GroupNormalization",
    "InstanceNormalization",
    "Exp",
    "Log",
    "Pow",
    "Sqrt",
    "Reciprocal",
)
VALIDATION_IMAGES = 256  # calibration images the variants are checked on
CALIBRATION_BATCH = 32
CALIBRATION_CHUNK = 8  # at most this many batches' activations held at once during calibration


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrecisionConfig:
    """Which variants to write and how. ``fp32`` in ``precisions`` returns the source file's artifact."""

    precisions: tuple[str, ...] = ("fp16", "int8")
    calibration_per_class: int = 32
    calibration_method: str = "minmax"
    per_channel: bool = True
    symmetric: bool = True  # TensorRT needs it; asymmetric activations only suit ONNX Runtime on CPU
    seed: int = 0
    fp16_block_ops: tuple[str, ...] = FP16_BLOCKED_OPS
    quantizer: str = "onnxruntime"
    int8_remainder: str = "fp16"  # the precision of everything outside Q/DQ pairs in the int8 file

    def __post_init__(self) -> None:
        object.__setattr__(self, "precisions", tuple(self.precisions))  # lists from JSON configs
        object.__setattr__(self, "fp16_block_ops", tuple(self.fp16_block_ops))
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad:
            raise ConfigError(f"unknown precision(s) {', '.join(bad)}: choose from {', '.join(PRECISIONS)}")
        if self.calibration_method not in CALIBRATION_METHODS:
            raise ConfigError(
                f"unknown calibration method {self.calibration_method!r}: choose from {', '.join(CALIBRATION_METHODS)}"
            )
        if self.quantizer not in QUANTIZERS:
            raise ConfigError(f"unknown quantizer {self.quantizer!r}: choose from {', '.join(QUANTIZERS)}")
        if self.quantizer == "modelopt" and self.calibration_method == "percentile":
            raise ConfigError("ModelOpt calibrates with minmax ('max') or entropy only, not percentile")
        if self.int8_remainder not in ("fp16", "fp32"):
            raise ConfigError(f"int8_remainder must be 'fp16' or 'fp32', found {self.int8_remainder!r}")
        if self.calibration_per_class < 1:
            raise ConfigError(f"calibration images per class must be at least 1, found {self.calibration_per_class}")


def precision_variants_from_onnx(
    fp32_onnx: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: PrecisionConfig | None = None,
    *,
    calibration: CalibrationSet | None = None,
) -> dict[str, OnnxArtifact]:
    """Write ``<stem>.fp16.onnx`` and ``<stem>.int8.onnx`` (each with its ``.onnx.json``) into ``out_dir``.

    Every variant is converted and validated in a staging directory first and moved into place only when all
    of them succeeded: on any failure none of this call's files is left. int8 needs ``calibration``.
    """
    cfg = config or PrecisionConfig()
    src = Path(fp32_onnx)
    if "int8" in cfg.precisions and calibration is None:
        raise ConfigError(
            "int8 needs a calibration set (class-balanced real images, see calibration/README.md); none was given"
        )
    if not src.is_file():
        raise ConfigError(f"fp32 ONNX file not found: {src}")
    if (found := onnx_precision(src)) != "fp32":
        raise ConfigError(f"{src} is already {found}; convert from the fp32 export instead")
    base = _source_artifact(src)
    if calibration is not None:
        _check_calibration_shape(calibration, base, src)
    if cfg.quantizer == "modelopt" and "int8" in cfg.precisions:
        from cosep_deploy.deps import require

        require("modelopt.onnx.quantization", purpose="int8 quantization with NVIDIA ModelOpt")
    out = ensure_writable_dir(out_dir)
    results: dict[str, OnnxArtifact] = {"fp32": base} if "fp32" in cfg.precisions else {}
    variants = [p for p in dict.fromkeys(cfg.precisions) if p != "fp32"]
    with tempfile.TemporaryDirectory(prefix=f".{src.stem}.", suffix=".staging", dir=out) as tmp:
        staged = {prec: _variant(src, Path(tmp), prec, base, cfg, calibration) for prec in variants}
        _commit(staged, Path(tmp), out)
    results.update(staged)
    return results


def _variant(
    src: Path, tmp: Path, precision: str, base: OnnxArtifact, cfg: PrecisionConfig, calibration: CalibrationSet | None
) -> OnnxArtifact:
    """Convert, check and validate one variant inside ``tmp``; returns its artifact (written beside it)."""
    import onnx

    dst = tmp / f"{src.stem}.{precision}.onnx"
    start = time.perf_counter()
    try:
        if precision == "fp16":
            _fp16(src, dst, cfg)
        elif calibration is None:
            raise InternalError("int8 without a calibration set got past the check")
        elif cfg.quantizer == "modelopt":
            _int8_modelopt(src, dst, calibration, cfg, base.input_name)
        else:
            _int8(src, dst, calibration, cfg, base.input_name, tmp)
        if precision == "int8" and cfg.int8_remainder == "fp16":
            _fp16_remainder(dst, cfg)
        proto = onnx.load(str(dst))
        onnx.checker.check_model(proto)
    except (CosepError, InternalError):
        raise
    except Exception as exc:  # the converters raise many types; all mean "cannot convert"
        raise ExportError(f"{precision} conversion of {src.name} failed: {exc}".splitlines()[0]) from exc
    seconds = time.perf_counter() - start
    if onnx_precision(dst) != precision:
        raise ExportError(f"the {precision} conversion of {src.name} produced a {onnx_precision(dst)} file")
    validation = _validate(src, dst, precision, calibration, cfg.seed, base.input_name, base.input_shape)
    source: dict[str, Any] = {
        **base.source,
        "fp32_onnx": src.name,
        "fp32_sha256": sha256_file(src),
        "converter": _converter(precision, cfg),
    }
    if precision == "int8" and calibration is not None:
        source.update(calibration=calibration.to_json(), calibration_sha256=calibration.sha256)
    artifact = dataclasses.replace(
        base,
        path=dst.name,
        sha256=sha256_file(dst),
        precision=precision,
        opset=next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), base.opset),
        source=source,
        validation=validation,
        seconds=round(seconds, 3),
        provenance=provenance(fp32_sha256=source["fp32_sha256"]),
    )
    artifact.save(str(dst) + ".json")
    return artifact


def _fp16(src: Path, dst: Path, cfg: PrecisionConfig) -> None:
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    # op_block_list replaces ORT's default list (ops without fp16 kernels anywhere), so extend it
    blocked = list(dict.fromkeys([*DEFAULT_OP_BLOCK_LIST, *cfg.fp16_block_ops]))
    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True, op_block_list=blocked)
    # the converter appends the input Casts at the end of the node list: ONNX (and TensorRT's parser) want
    # nodes in topological order, which ORT's own graph helper restores
    OnnxModel.graph_topological_sort(model.graph, is_deterministic=True)
    onnx.save(model, str(dst))


def _fp16_remainder(path: Path, cfg: PrecisionConfig) -> None:
    """Convert everything outside the Q/DQ pairs of a quantized file to fp16 (see the module docstring); a file
    that already holds fp16 (ModelOpt's own high-precision dtype) is left as it is."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = onnx.load(str(path))
    fp16 = onnx.TensorProto.FLOAT16
    if any(i.data_type == fp16 for i in model.graph.initializer):
        return
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    blocked = [*DEFAULT_OP_BLOCK_LIST, *cfg.fp16_block_ops]
    if opset < 19:  # QuantizeLinear/DequantizeLinear take fp16 scales from opset 19 on
        blocked += ["QuantizeLinear", "DequantizeLinear"]
    model = convert_float_to_float16(model, keep_io_types=True, op_block_list=list(dict.fromkeys(blocked)))
    OnnxModel.graph_topological_sort(model.graph, is_deterministic=True)
    onnx.save(model, str(path))


def _int8(src: Path, dst: Path, calibration: CalibrationSet, cfg: PrecisionConfig, input_name: str, tmp: Path) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[cfg.calibration_method]
    reader = calibration.data_reader(input_name, batch_size=CALIBRATION_BATCH)
    prepared = tmp / f".{src.stem}.prepared.onnx"
    try:
        quant_pre_process(str(src), str(prepared))  # ORT's recommended first step: shapes, basic cleanup
        # the histogram calibrators print progress to stdout: keep the CLI's output ours
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(prepared),
                str(dst),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=cfg.per_channel,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=method,
                extra_options={
                    "ActivationSymmetric": cfg.symmetric,
                    "WeightSymmetric": cfg.symmetric,
                    "QuantizeBias": False,  # TensorRT cannot parse int32 bias DequantizeLinear
                    # calibrate in chunks merged as they go: ORT's calibrators otherwise keep every batch's
                    # activations (100 GB for ResNet-50 on 1000 ImageNet images). Not CalibMaxIntermediateOutputs:
                    # in ORT 1.31 it drops the collected batches without merging their ranges.
                    "CalibStridedMinMax": _chunk(len(reader)),
                },
            )
    finally:
        prepared.unlink(missing_ok=True)


def _chunk(batches: int) -> int:
    """The largest batch count up to CALIBRATION_CHUNK that divides ``batches`` (ORT requires a divisor)."""
    return max(d for d in range(1, min(CALIBRATION_CHUNK, batches) + 1) if batches % d == 0)


def _int8_modelopt(src: Path, dst: Path, calibration: CalibrationSet, cfg: PrecisionConfig, input_name: str) -> None:
    """ModelOpt's int8 PTQ (symmetric, per-channel weights by design), calibrated on CPU."""
    from cosep_deploy.deps import require

    moq = require("modelopt.onnx.quantization", purpose="int8 quantization with NVIDIA ModelOpt")
    # ModelOpt converts the remainder itself where it can (high_precision_dtype); _fp16_remainder otherwise
    params = inspect.signature(moq.quantize).parameters
    extra = {"high_precision_dtype": cfg.int8_remainder} if "high_precision_dtype" in params else {}
    moq.quantize(
        **extra,
        onnx_path=str(src),
        quantize_mode="int8",
        calibration_data={input_name: np.asarray(calibration.images)},
        calibration_method="max" if cfg.calibration_method == "minmax" else "entropy",
        calibration_eps=["cpu"],
        output_path=str(dst),
    )


def _validate(
    src: Path,
    dst: Path,
    precision: str,
    calibration: CalibrationSet | None,
    seed: int,
    input_name: str,
    input_shape: list[Any],
) -> dict[str, Any]:
    """Compare the variant with the fp32 file in ONNX Runtime (raises ExportValidationError on failure)."""
    from cosep_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner
    from cosep_deploy.compare import compare_runners

    if calibration is not None:
        images, inputs = np.asarray(calibration.images[:VALIDATION_IMAGES]), "calibration set"
    else:  # fp16 alone has no real images: seeded N(0, 1), the range of normalised images
        shape = [32, *(int(d) for d in input_shape[1:])]
        images = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        inputs = f"random normal (seed {seed})"
    feeds = [{input_name: images[i : i + 64]} for i in range(0, len(images), 64)]
    with OnnxRuntimeRunner(src, name=src.name) as ref, OnnxRuntimeRunner(dst, precision=precision, name=dst.name) as c:
        result = compare_runners(ref, c, feeds, precision=precision, check=True)
    return {**result.to_json(), "reference": src.name, "candidate": dst.name, "inputs": inputs}


def _commit(staged: dict[str, OnnxArtifact], tmp: Path, out: Path) -> None:
    """Move every staged file into ``out``; if one move fails, remove those already moved."""
    moved: list[Path] = []
    try:
        for art in staged.values():
            for name in (art.path, art.path + ".json"):
                os.replace(tmp / name, out / name)
                moved.append(out / name)
    except OSError as exc:
        for path in moved:
            path.unlink(missing_ok=True)
        raise ExportError(f"cannot write the precision variants into {out}: {exc}") from exc


def _source_artifact(src: Path) -> OnnxArtifact:
    """The fp32 file's artifact: its ``.onnx.json`` when present, else described from the file itself."""
    sidecar = Path(str(src) + ".json")
    if sidecar.is_file():
        art = OnnxArtifact.load(sidecar)
        if art.sha256 != sha256_file(src):
            raise ConfigError(f"{src} does not match the sha256 in {sidecar.name}; re-export it")
        return art
    import onnx

    proto = onnx.load(str(src), load_external_data=False)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return OnnxArtifact(
        path=src.name,
        sha256=sha256_file(src),
        precision="fp32",
        opset=next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0),
        input_name=proto.graph.input[0].name,
        input_shape=[d.dim_param or int(d.dim_value) for d in dims],
        output_names=[o.name for o in proto.graph.output],
        source={},
        validation={},
        seconds=0.0,
        provenance=provenance(),
    )


def _check_calibration_shape(calibration: CalibrationSet, base: OnnxArtifact, src: Path) -> None:
    want = list(base.input_shape[1:])
    got = list(calibration.images.shape[1:])
    if len(want) != len(got) or any(isinstance(w, int) and w > 0 and w != g for w, g in zip(want, got, strict=True)):
        raise ConfigError(
            f"calibration images are {got} but {src.name} expects {want} ([C, H, W]): "
            "draw the calibration set from the dataset the model was trained on"
        )


def _converter(precision: str, cfg: PrecisionConfig) -> dict[str, Any]:
    import onnxruntime as ort

    if precision == "fp16":
        return {
            "name": "onnxruntime.transformers.float16.convert_float_to_float16",
            "onnxruntime": str(ort.__version__),
            "keep_io_types": True,
            "fp32_ops": list(cfg.fp16_block_ops),
        }
    name = "modelopt.onnx.quantization" if cfg.quantizer == "modelopt" else "onnxruntime.quantization.quantize_static"
    return {
        "name": name,
        "onnxruntime": str(ort.__version__),
        "format": "QDQ",
        "activations": "int8 symmetric" if cfg.symmetric else "int8 asymmetric",
        "weights": ("per-channel" if cfg.per_channel else "per-tensor") + " int8",
        "calibration_method": cfg.calibration_method,
        "bias": "fp32" if cfg.int8_remainder == "fp32" else "fp16",
        "remainder": cfg.int8_remainder,
        "remainder_fp32_ops": list(cfg.fp16_block_ops) if cfg.int8_remainder == "fp16" else [],
    }
