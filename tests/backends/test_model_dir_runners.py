"""``runner_for`` on a run's model directories: eager PyTorch (here, for real) or Torch-TensorRT (GPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cosep_deploy.backends.select import runner_for
from cosep_deploy.backends.torch.runner import TorchRunner
from cosep_deploy.backends.torch_tensorrt.runner import TorchTensorRTRunner
from cosep_deploy.compare import compare_files
from cosep_deploy.errors import ConfigError


def _images(run: Path, n: int = 32) -> np.ndarray:
    from cosep_deploy.pipeline.stages import data_for_run, load_run_spec

    bundle = data_for_run(load_run_spec(run))
    return np.stack([bundle.val[i][0].numpy() for i in range(n)]).astype(np.float32)


def test_model_directories_pick_a_pytorch_runner(small_run: Path) -> None:
    for stage in ("dense", "finetuned"):
        runner = runner_for(small_run / stage, threads=1)
        assert isinstance(runner, TorchRunner) and runner.name == stage
        assert runner.info().input_shapes == {"input": ("batch", 1, 8, 8)}
    compiled = runner_for(small_run / "finetuned", backend="torch-tensorrt")  # built, not compiled: no GPU needed
    assert isinstance(compiled, TorchTensorRTRunner) and compiled.input_shape == (1, 8, 8)


def test_bad_backend_or_directory_is_a_config_error(small_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="torch-tensorrt"):
        runner_for(small_run / "dense", backend="tensorrt")
    with pytest.raises(ConfigError, match="model directories"):
        runner_for(small_run / "onnx" / "dense.onnx", backend="torch")
    with pytest.raises(ConfigError, match="neither a pruned model"):
        runner_for(tmp_path)


def test_exported_onnx_matches_its_pytorch_model(small_run: Path) -> None:
    result = compare_files(small_run / "onnx" / "pruned.onnx", small_run / "finetuned", _images(small_run), threads=1)
    assert result.passed and result.precision == "fp32"
