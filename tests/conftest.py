"""Shared fixtures: a tiny real dataset (digits, 8x8) and a briefly trained model, built once per session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from cosep_deploy.errors import MissingDependencyError

torch.set_num_threads(min(2, os.cpu_count() or 1))


def _has_gpu() -> bool:
    return torch.cuda.is_available()


def _has_tensorrt() -> bool:
    from cosep_deploy.deps import require

    try:
        require("tensorrt")
    except MissingDependencyError:
        return False
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)")
    skip_trt = pytest.mark.skip(reason="needs TensorRT (not importable here)")
    skip_jetson = pytest.mark.skip(reason="needs a Jetson board")
    gpu, trt, jetson = _has_gpu(), _has_tensorrt(), Path("/etc/nv_tegra_release").is_file()
    for item in items:
        if "gpu" in item.keywords and not gpu:
            item.add_marker(skip_gpu)
        if "tensorrt" in item.keywords and not trt:
            item.add_marker(skip_trt)
        if "jetson" in item.keywords and not jetson:
            item.add_marker(skip_jetson)


@pytest.fixture(scope="session")
def digits8() -> Any:
    from cosep_deploy.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def trained_resnet20(digits8: Any) -> torch.nn.Module:
    """CIFAR ResNet-20 trained for 4 epochs on 8x8 digits (about 1 s of CPU time per epoch)."""
    from cosep_deploy.finetune import TrainConfig, train_model
    from cosep_deploy.models import ModelSpec, build_model

    model = build_model(ModelSpec(name="resnet20", num_classes=10, in_channels=1, image_size=8), seed=0)
    train_model(model, digits8.train, digits8.val, TrainConfig(epochs=4, seed=0))
    return model.eval()


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run directory (digits 8x8, ResNet-20, tiny schedules): every stage's artifacts."""
    from cosep_deploy.bench import BenchConfig
    from cosep_deploy.finetune import TrainConfig
    from cosep_deploy.pipeline import PipelineConfig, RunSpec, run_pipeline

    out = tmp_path_factory.mktemp("small_run") / "run"
    cfg = PipelineConfig(
        run=RunSpec(model="resnet20", data="digits"),
        train=TrainConfig(epochs=3),
        # 3 epochs: the knee prunes hard (3-15 channels a group here), and 1 epoch left the pruned model at 67%
        # top-1, too weak for its int8 file to keep 95% top-1 agreement, the export's check
        finetune=TrainConfig(epochs=3, lr=0.02),
        bench=BenchConfig(batch_sizes=(1,), iterations=5, warmup=1, min_seconds=0),
        threads=1,
    )
    run_pipeline(out, cfg)
    return out
