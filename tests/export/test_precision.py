"""fp16 and int8 (Q/DQ) variants decided in the ONNX file, validated and measured in ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from cosep_deploy.deps import is_available
from cosep_deploy.errors import ConfigError, ExportError, MissingDependencyError
from cosep_deploy.export import onnx_from_model
from cosep_deploy.export.accuracy import onnx_accuracy
from cosep_deploy.export.calibration import CalibrationSet, calibration_set_from_dataset
from cosep_deploy.export.onnx import OnnxArtifact
from cosep_deploy.export.precision import PrecisionConfig, onnx_precision, precision_variants_from_onnx


@pytest.fixture(scope="module")
def calibration(digits8: Any) -> CalibrationSet:
    return calibration_set_from_dataset(digits8.train, 32, num_classes=10, seed=0, source=str(digits8.spec))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, trained_resnet20: torch.nn.Module, digits8: Any) -> Path:
    out = tmp_path_factory.mktemp("precision")
    sample = torch.stack([digits8.val[i][0] for i in range(16)])
    onnx_from_model(trained_resnet20, sample, out / "m.onnx", source={"model": "resnet20"})
    return out


@pytest.fixture(scope="module")
def variants(exported: Path, calibration: CalibrationSet) -> dict[str, OnnxArtifact]:
    cfg = PrecisionConfig(precisions=("fp32", "fp16", "int8"))
    return precision_variants_from_onnx(exported / "m.onnx", exported, cfg, calibration=calibration)


def test_variants_are_written_with_their_artifacts(exported: Path, variants: dict[str, OnnxArtifact]) -> None:
    assert set(variants) == {"fp32", "fp16", "int8"}
    fp32_sha = variants["fp32"].sha256
    for precision in ("fp16", "int8"):
        path = exported / f"m.{precision}.onnx"
        art = OnnxArtifact.load(str(path) + ".json")
        assert art == variants[precision] and art.path == path.name and art.precision == precision
        assert art.source["fp32_sha256"] == fp32_sha and art.source["model"] == "resnet20"
        assert art.input_name == "input" and art.input_shape[0] == "batch" and art.output_names == ["logits"]
        assert art.validation["passed"] and art.validation["precision"] == precision
    assert variants["int8"].source["calibration_sha256"] == variants["int8"].source["calibration"]["sha256"]
    assert variants["int8"].source["calibration"]["per_class"] == 32
    assert sorted(p.name for p in exported.iterdir()) == [
        "m.fp16.onnx",
        "m.fp16.onnx.json",
        "m.int8.onnx",
        "m.int8.onnx.json",
        "m.onnx",
        "m.onnx.json",
    ]  # no staging leftovers


def test_onnx_precision_detects_each_file(exported: Path, variants: dict[str, OnnxArtifact]) -> None:
    assert onnx_precision(exported / "m.onnx") == "fp32"
    assert onnx_precision(exported / "m.fp16.onnx") == "fp16"
    assert onnx_precision(exported / "m.int8.onnx") == "int8"
    with pytest.raises(ConfigError, match="not found"):
        onnx_precision(exported / "absent.onnx")


def test_fp16_keeps_fp32_io_and_sensitive_ops(exported: Path, variants: dict[str, OnnxArtifact]) -> None:
    model = onnx.load(str(exported / "m.fp16.onnx"))
    onnx.checker.check_model(model, full_check=True)  # topologically sorted, typed
    fp32 = onnx.TensorProto.FLOAT
    assert model.graph.input[0].type.tensor_type.elem_type == fp32
    assert model.graph.output[0].type.tensor_type.elem_type == fp32
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    inits = {i.name: i for i in model.graph.initializer}
    assert all(inits[w].data_type == onnx.TensorProto.FLOAT16 for w in conv_weights)
    # the global average (ReduceMean) is computed in fp32: a Cast to fp32 feeds it
    producers = {out: n for n in model.graph.node for out in n.output}
    (reduce,) = [n for n in model.graph.node if n.op_type == "ReduceMean"]
    feeding = producers[reduce.input[0]]
    assert feeding.op_type == "Cast" and feeding.attribute[0].i == fp32


def test_int8_is_symmetric_per_channel_qdq_with_fp32_bias(exported: Path, variants: dict[str, OnnxArtifact]) -> None:
    model = onnx.load(str(exported / "m.int8.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert dq and any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    for node in dq:
        quantized = inits.get(node.input[0])
        assert quantized is None or quantized.dtype == np.int8  # no int32 bias DQ: TensorRT rejects them
        if len(node.input) > 2 and node.input[2] in inits:
            assert not inits[node.input[2]].any()  # symmetric: zero points are 0
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    weight_dq = {n.output[0]: n for n in dq}
    casts = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Cast"}
    weights = [casts.get(c.input[1], c.input[1]) for c in convs]  # through the Cast to fp16 before opset 19
    per_channel = [inits[weight_dq[w].input[1]].size for w in weights if w in weight_dq]
    assert len(per_channel) == len(convs) and all(size > 1 for size in per_channel)
    assert all(len(c.input) < 3 or c.input[2] in inits for c in convs)  # biases are plain initializers, no DQ


def _fp32_outside_qdq(model: onnx.ModelProto) -> list[str]:
    """Conv/Gemm weights and biases, and their outputs' consumers, that are not fp16 in the file."""
    inits = {i.name: i for i in model.graph.initializer}
    cast_to = {
        n.output[0]: next(a.i for a in n.attribute if a.name == "to") for n in model.graph.node if n.op_type == "Cast"
    }
    dq_out = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    bad = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        for name in node.input[1:]:
            if name in inits and inits[name].data_type != onnx.TensorProto.FLOAT16:
                bad.append(f"{node.name}: initializer {name}")
            elif name in dq_out and inits[dq_out[name].input[1]].data_type != onnx.TensorProto.FLOAT16:
                bad.append(f"{node.name}: {name} is an fp32 DequantizeLinear output")
            elif name in cast_to and cast_to[name] != onnx.TensorProto.FLOAT16:
                bad.append(f"{node.name}: {name} cast to {cast_to[name]}")
    return bad


def test_int8_remainder_is_fp16_with_fp32_io(exported: Path, variants: dict[str, OnnxArtifact]) -> None:
    """Strongly typed TensorRT (10.x/11.x) computes outside the Q/DQ pairs in the file's type: it must be fp16."""
    model = onnx.load(str(exported / "m.int8.onnx"))
    assert _fp32_outside_qdq(model) == []
    assert any(n.op_type == "Conv" for n in model.graph.node)
    fp32 = onnx.TensorProto.FLOAT
    assert all(v.type.tensor_type.elem_type == fp32 for v in [*model.graph.input, *model.graph.output])
    converter = variants["int8"].source["converter"]
    assert (converter["remainder"], converter["bias"]) == ("fp16", "fp16")
    assert variants["int8"].validation["passed"]


def test_accuracy_of_variants_on_digits(exported: Path, variants: dict[str, OnnxArtifact], digits8: Any) -> None:
    fp32 = onnx_accuracy(exported / "m.onnx", digits8.val)
    fp16 = onnx_accuracy(exported / "m.fp16.onnx", digits8.val)
    int8 = onnx_accuracy(exported / "m.int8.onnx", digits8.val)
    assert fp32["samples"] == fp16["samples"] == int8["samples"] == len(digits8.val)
    assert fp32["top1"] > 0.9
    assert abs(fp16["top1"] - fp32["top1"]) <= 0.005  # fp16 within half a point of fp32
    assert fp32["top1"] - int8["top1"] <= 0.01  # acceptance: int8 within 1 point of fp32 top-1


def test_int8_needs_calibration(exported: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="calibration set"):
        precision_variants_from_onnx(exported / "m.onnx", tmp_path, PrecisionConfig(precisions=("int8",)))
    assert not list(tmp_path.iterdir())


def test_bad_configs_are_refused(exported: Path, tmp_path: Path, digits8: Any) -> None:
    with pytest.raises(ConfigError, match="unknown precision"):
        PrecisionConfig(precisions=("bf16",))
    with pytest.raises(ConfigError, match="calibration method"):
        PrecisionConfig(calibration_method="mse")
    with pytest.raises(ConfigError, match="already int8"):
        precision_variants_from_onnx(exported / "m.int8.onnx", tmp_path, PrecisionConfig(precisions=("fp16",)))
    wrong = CalibrationSet(images=np.zeros((10, 3, 8, 8), np.float32), labels=np.arange(10), recipe={})
    with pytest.raises(ConfigError, match=r"calibration images are \[3, 8, 8\]"):
        precision_variants_from_onnx(exported / "m.onnx", tmp_path, PrecisionConfig(), calibration=wrong)
    assert not list(tmp_path.iterdir())


def test_failure_leaves_no_partial_files(exported: Path, tmp_path: Path, calibration: CalibrationSet) -> None:
    (tmp_path / "m.int8.onnx").mkdir()  # the int8 file cannot be moved into place after fp16 was
    with pytest.raises(ExportError, match="cannot write"):
        precision_variants_from_onnx(exported / "m.onnx", tmp_path, PrecisionConfig(), calibration=calibration)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.int8.onnx"]


def test_entropy_calibration_and_fp32_source_without_sidecar(
    exported: Path, tmp_path: Path, calibration: CalibrationSet, digits8: Any
) -> None:
    bare = tmp_path / "bare.onnx"
    bare.write_bytes((exported / "m.onnx").read_bytes())  # no .onnx.json beside it
    cfg = PrecisionConfig(precisions=("int8",), calibration_method="entropy", int8_remainder="fp32")
    arts = precision_variants_from_onnx(bare, tmp_path / "out", cfg, calibration=calibration)
    assert arts["int8"].source["converter"]["calibration_method"] == "entropy"
    assert _fp32_outside_qdq(onnx.load(str(tmp_path / "out" / "bare.int8.onnx")))  # the old file, on request
    assert arts["int8"].source["converter"]["remainder"] == "fp32"
    source_opset = next(o.version for o in onnx.load(str(bare)).opset_import if o.domain in ("", "ai.onnx"))
    assert arts["int8"].input_name == "input" and arts["int8"].opset == source_opset  # the source's, kept
    fp32 = onnx_accuracy(bare, digits8.val)["top1"]
    assert fp32 - onnx_accuracy(tmp_path / "out" / "bare.int8.onnx", digits8.val)["top1"] <= 0.02


@pytest.mark.skipif(is_available("modelopt.onnx.quantization"), reason="ModelOpt is installed here")
def test_modelopt_quantizer_says_how_to_install(exported: Path, tmp_path: Path, calibration: CalibrationSet) -> None:
    cfg = PrecisionConfig(precisions=("fp16", "int8"), quantizer="modelopt")
    with pytest.raises(MissingDependencyError, match=r"cosep-deploy\[modelopt\]"):
        precision_variants_from_onnx(exported / "m.onnx", tmp_path, cfg, calibration=calibration)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("opset", [17, 19])
def test_fp16_remainder_per_opset(tmp_path: Path, opset: int) -> None:
    """Before opset 19 Q/DQ take fp32 scales only (Casts around them); from 19 the scales are fp16 as well."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from cosep_deploy.export.precision import _fp16_remainder

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.integers(-100, 100, (3, 2, 3, 3)).astype(np.int8), "w"),
        numpy_helper.from_array(np.full(3, 0.01, np.float32), "ws"),
        numpy_helper.from_array(np.zeros(3, np.int8), "wz"),
        numpy_helper.from_array(np.array(0.05, np.float32), "s"),
        numpy_helper.from_array(np.array(0, np.int8), "z"),
        numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=0),
        helper.make_node("Conv", ["dq", "wd", "b"], ["output"], pads=[1, 1, 1, 1]),
    ]
    x_info = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 2, 5, 5])
    y_info = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 3, 5, 5])
    graph = helper.make_graph(nodes, "qdq", [x_info], [y_info], inits)
    path = tmp_path / "q.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=9), path)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    before = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    _fp16_remainder(path, PrecisionConfig())
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert _fp32_outside_qdq(model) == []
    scales = {i.name: i.data_type for i in model.graph.initializer if i.name in ("s", "ws")}
    want = TensorProto.FLOAT16 if opset >= 19 else TensorProto.FLOAT
    assert set(scales.values()) == {want}
    after = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert after.dtype == np.float32 and np.abs(after - before).max() < 0.05
