"""ONNX Runtime engine builds: optimised graph + manifest, refused when damaged or from another runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cosep_deploy.backends.onnxruntime.build import ort_engine_from_onnx
from cosep_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner
from cosep_deploy.engines.manifest import manifest_path_for
from cosep_deploy.errors import EngineLoadError, TargetMismatchError
from cosep_deploy.export import onnx_from_model


@pytest.fixture()
def engine(tmp_path: Path) -> tuple[Path, nn.Module]:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)
    ).eval()
    src = tmp_path / "m.onnx"
    onnx_from_model(model, torch.randn(2, 3, 12, 12), src)
    dst = tmp_path / "engines" / "m.onnx"
    manifest = ort_engine_from_onnx(src, dst, threads=1)
    assert manifest.backend == "onnxruntime" and manifest.engine_bytes == dst.stat().st_size
    return dst, model


def test_built_engine_runs_and_matches(engine: tuple[Path, nn.Module]) -> None:
    path, model = engine
    x = torch.randn(3, 3, 12, 12)
    with OnnxRuntimeRunner(path, threads=1) as r:
        np.testing.assert_allclose(
            r.infer({"input": x.numpy()})["logits"], model(x).detach().numpy(), rtol=1e-3, atol=1e-4
        )


def test_damaged_engine_is_refused(engine: tuple[Path, nn.Module]) -> None:
    path, _ = engine
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EngineLoadError, match="corrupted"), OnnxRuntimeRunner(path):
        pass


def test_engine_from_another_runtime_version_is_refused(engine: tuple[Path, nn.Module]) -> None:
    path, _ = engine
    mfile = manifest_path_for(path)
    body = json.loads(mfile.read_text())
    body["runtime_version"] = "1.2.3"
    mfile.write_text(json.dumps(body))
    with pytest.raises(TargetMismatchError, match=r"1\.2\.3"), OnnxRuntimeRunner(path):
        pass
