"""ONNX export: dynamic batch, validation on real inputs, ORT runner, corrupted files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cosep_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner
from cosep_deploy.errors import EngineLoadError, ExportValidationError
from cosep_deploy.export import OnnxArtifact, onnx_from_model, validate_onnx


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, trained_resnet20: torch.nn.Module, digits8: Any) -> Path:
    sample = torch.stack([digits8.val[i][0] for i in range(16)])
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    art = onnx_from_model(trained_resnet20, sample, path)
    assert art.input_shape[0] == "batch" and art.input_shape[1:] == [1, 8, 8]
    assert art.validation["logits"]["argmax_agreement"] == 1.0
    return path


def test_export_runs_any_batch_and_matches_torch(exported: Path, trained_resnet20: torch.nn.Module) -> None:
    art = OnnxArtifact.load(str(exported) + ".json")
    assert art.opset >= 17 and art.sha256
    x = torch.randn(5, 1, 8, 8)
    with OnnxRuntimeRunner(exported, threads=1) as runner:
        out = runner.infer({"input": x.numpy()})["logits"]
        info = runner.info()
    assert out.shape == (5, 10)
    ref = trained_resnet20(x).detach().numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-4)
    assert info.backend == "onnxruntime" and info.settings["intra_op_threads"] == 1


def test_validation_fails_on_a_different_model(exported: Path, digits8: Any) -> None:
    from cosep_deploy.models import ModelSpec, build_model

    other = build_model(ModelSpec(name="resnet20", num_classes=10, in_channels=1, image_size=8), seed=123).eval()
    sample = torch.stack([digits8.val[i][0] for i in range(8)])
    with pytest.raises(ExportValidationError, match="logits"):
        validate_onnx(exported.read_bytes(), other, sample, precision="fp32")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupted_onnx_is_refused(exported: Path, tmp_path: Path, damage: str) -> None:
    data = exported.read_bytes()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not an onnx file at all")
    with pytest.raises(EngineLoadError, match="cannot load"), OnnxRuntimeRunner(bad):
        pass
