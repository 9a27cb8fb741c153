"""fp16 and int8 (Q/DQ) variants decided in the ONNX file, with accuracy measured in ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cosep_deploy.errors import ConfigError, DataError
from cosep_deploy.export import onnx_from_model
from cosep_deploy.export.accuracy import onnx_accuracy
from cosep_deploy.export.calibration import calibration_set_from_dataset
from cosep_deploy.export.onnx import OnnxArtifact
from cosep_deploy.export.precision import PrecisionConfig, onnx_precision, precision_variants_from_onnx


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory, trained_resnet20: torch.nn.Module, digits8: Any) -> Path:
    out = tmp_path_factory.mktemp("precision")
    sample = torch.stack([digits8.val[i][0] for i in range(16)])
    onnx_from_model(trained_resnet20, sample, out / "m.onnx")
    cal = calibration_set_from_dataset(digits8.train, 32, num_classes=10, source="digits")
    arts = precision_variants_from_onnx(out / "m.onnx", out, PrecisionConfig(), calibration=cal)
    assert set(arts) == {"fp16", "int8"}
    assert arts["int8"].source["calibration"]["sha256"] == cal.sha256
    return out


def test_each_variant_is_what_it_says(variants: Path) -> None:
    assert onnx_precision(variants / "m.onnx") == "fp32"
    assert onnx_precision(variants / "m.fp16.onnx") == "fp16"
    assert onnx_precision(variants / "m.int8.onnx") == "int8"
    art = OnnxArtifact.load(str(variants / "m.int8.onnx") + ".json")
    assert art.precision == "int8" and art.input_shape[0] == "batch"


def test_accuracy_of_variants_on_digits(variants: Path, digits8: Any) -> None:
    fp32 = onnx_accuracy(variants / "m.onnx", digits8.val)
    fp16 = onnx_accuracy(variants / "m.fp16.onnx", digits8.val)
    int8 = onnx_accuracy(variants / "m.int8.onnx", digits8.val)
    assert fp32["samples"] == len(digits8.val) and fp32["top1"] > 0.9
    assert abs(fp16["top1"] - fp32["top1"]) <= 0.005
    assert fp32["top1"] - int8["top1"] <= 0.01  # int8 within 1 point of fp32 top-1


def test_fp16_outputs_close_to_fp32(variants: Path) -> None:
    from cosep_deploy.backends.onnxruntime import OnnxRuntimeRunner

    x = {"input": np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32)}
    with OnnxRuntimeRunner(variants / "m.onnx") as a, OnnxRuntimeRunner(variants / "m.fp16.onnx") as b:
        np.testing.assert_allclose(b.infer(x)["logits"], a.infer(x)["logits"], rtol=2e-2, atol=2e-2)


def test_calibration_with_missing_class_is_refused(digits8: Any) -> None:
    from torch.utils.data import Subset

    from cosep_deploy.data import dataset_labels

    labels = dataset_labels(digits8.train)
    no_sevens = Subset(digits8.train, [int(i) for i in np.flatnonzero(labels != 7)])
    with pytest.raises(DataError, match=r"7 \(0\)"):
        calibration_set_from_dataset(no_sevens, 8, num_classes=10)


def test_int8_needs_calibration(variants: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="calibration"):
        precision_variants_from_onnx(variants / "m.onnx", tmp_path, PrecisionConfig(precisions=("int8",)))
    assert not list(tmp_path.iterdir())
