"""Top-1 and prediction agreement of exported files, measured with ONNX Runtime on the validation split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from cosep_deploy.errors import DataError
from cosep_deploy.export import onnx_from_model
from cosep_deploy.export.accuracy import agreement_with, onnx_accuracy
from cosep_deploy.export.precision import PrecisionConfig, precision_variants_from_onnx
from cosep_deploy.models import ModelSpec, build_model


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, trained_resnet20: torch.nn.Module, digits8: Any) -> Path:
    out = tmp_path_factory.mktemp("accuracy")
    sample = torch.stack([digits8.val[i][0] for i in range(8)])
    onnx_from_model(trained_resnet20, sample, out / "trained.onnx")
    precision_variants_from_onnx(out / "trained.onnx", out, PrecisionConfig(precisions=("fp16",)))
    untrained = build_model(ModelSpec(name="resnet20", num_classes=10, in_channels=1, image_size=8), seed=1).eval()
    onnx_from_model(untrained, sample, out / "untrained.onnx")
    return out


def _torch_top1(model: torch.nn.Module, dataset: Any) -> float:
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = np.array([dataset[i][1] for i in range(len(dataset))])
    with torch.no_grad():
        predicted = model.eval()(images).argmax(-1).numpy()
    return float((predicted == labels).mean())


def test_onnx_top1_matches_pytorch(files: Path, trained_resnet20: torch.nn.Module, digits8: Any) -> None:
    result = onnx_accuracy(files / "trained.onnx", digits8.val, batch_size=100)  # batches of 100, 100, 100, 59
    assert result["samples"] == len(digits8.val) == 359
    assert result["correct"] == round(result["top1"] * result["samples"])
    assert result["top1"] == pytest.approx(_torch_top1(trained_resnet20, digits8.val), abs=1 / 359 + 1e-9)
    assert result["top1"] > 0.9
    assert onnx_accuracy(files / "untrained.onnx", digits8.val)["top1"] < 0.5


def test_agreement(files: Path, digits8: Any) -> None:
    assert agreement_with(files / "trained.onnx", files / "trained.onnx", digits8.val) == 1.0
    assert agreement_with(files / "trained.onnx", files / "trained.fp16.onnx", digits8.val) >= 0.99
    assert agreement_with(files / "trained.onnx", files / "untrained.onnx", digits8.val, batch_size=64) < 0.5


def test_empty_dataset_is_refused(files: Path, digits8: Any) -> None:
    with pytest.raises(DataError, match="empty"):
        onnx_accuracy(files / "trained.onnx", Subset(digits8.val, []))
