"""The Torch-TensorRT runner: argument checks and the missing-package error here; compiling and running on a GPU.

The precision choice is tested on plain functions whose parameters are those of
``torch_tensorrt.dynamo.compile`` in 2.8 (``enabled_precisions``, no autocast) and 2.14 (autocast, no
``enabled_precisions``), since the runner picks options by the parameters the installed release has.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from cosep_deploy.backends.torch_tensorrt.runner import TorchTensorRTRunner, compile_device, precision_options
from cosep_deploy.deps import is_available
from cosep_deploy.errors import ConfigError, EngineBuildError, EngineLoadError, MissingDependencyError

HAS_TORCH_TRT = is_available("torch_tensorrt")


def _tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    ).eval()


def compile_2_8(exported_program: Any, inputs: Any = None, *, enabled_precisions: Any = None, **kwargs: Any) -> None:
    """The precision-related parameters of torch_tensorrt.dynamo.compile in 2.8."""


def compile_2_14(
    exported_program: Any,
    inputs: Any = None,
    *,
    enable_autocast: bool = False,
    autocast_low_precision_type: Any = None,
    **kwargs: Any,
) -> None:
    """The precision-related parameters of torch_tensorrt.dynamo.compile in 2.14."""


def compile_neither(exported_program: Any, inputs: Any = None) -> None:
    """A compiler without any precision option."""


def test_precision_options_follow_the_installed_release() -> None:
    assert precision_options(compile_2_14, "fp32") == ("fp32", {})
    assert precision_options(compile_2_14, "fp16") == (
        "autocast-fp16",
        {"enable_autocast": True, "autocast_low_precision_type": torch.float16},
    )
    assert precision_options(compile_2_8, "fp16") == (
        "enabled-precisions-fp16",
        {"enabled_precisions": {torch.float16, torch.float32}},
    )
    with pytest.raises(EngineBuildError, match="neither enable_autocast nor enabled_precisions"):
        precision_options(compile_neither, "fp16")
    with pytest.raises(ConfigError, match="fp32 or fp16"):
        precision_options(compile_2_14, "bf16")


def test_compile_device_always_carries_a_gpu_index() -> None:
    """torch_tensorrt.Device(gpu_id=None) fails: "cuda" must reach torch_tensorrt.compile as "cuda:N"."""
    assert compile_device(torch.device("cuda"), current=0) == torch.device("cuda", 0)
    assert compile_device(torch.device("cuda"), current=1).index == 1
    assert compile_device(torch.device("cuda:2"), current=0) == torch.device("cuda", 2)  # explicit index kept
    runner = TorchTensorRTRunner(_tiny_cnn(), input_shape=(1, 8, 8), device="cuda")
    assert runner.info().settings["device"] == "cuda"  # resolved on entering, where CUDA is available


def test_int8_is_refused_with_the_alternative() -> None:
    with pytest.raises(ConfigError, match="ModelOpt") as err:
        TorchTensorRTRunner(_tiny_cnn(), input_shape=(1, 8, 8), precision="int8")
    assert "int8 ONNX" in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"device": "cpu"}, "NVIDIA GPU"),
        ({"device": "not-a-device"}, "invalid torch device"),
        ({"batch": (4, 2, 8)}, "min <= opt <= max"),
        ({"input_shape": ()}, "input_shape"),
        ({"optimization_level": 7}, "0-5"),
        ({"workspace_mib": 0}, "workspace_mib"),
        ({"precision": "fp64"}, "fp32 or fp16"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"input_shape": (1, 8, 8), **kwargs}
    with pytest.raises(ConfigError, match=match):
        TorchTensorRTRunner(_tiny_cnn(), **args)


def test_info_before_compiling_describes_the_settings() -> None:
    runner = TorchTensorRTRunner(_tiny_cnn(), input_shape=(1, 8, 8), batch=(1, 4, 8), precision="fp16", tf32=False)
    info = runner.info()
    assert info.backend == "torch-tensorrt" and info.precision == "fp16"
    assert info.settings["batch_range"] == [1, 4, 8] and info.settings["tf32"] is False
    assert info.input_names == ("input",) and info.input_shapes == {"input": ("batch", 1, 8, 8)}
    if not HAS_TORCH_TRT:
        assert info.runtime_version == "not installed"
    with pytest.raises(EngineLoadError, match="not active"):
        runner.infer({"input": np.zeros((1, 1, 8, 8), np.float32)})


@pytest.mark.skipif(HAS_TORCH_TRT, reason="torch-tensorrt is installed here")
def test_missing_package_names_the_install() -> None:
    runner = TorchTensorRTRunner(_tiny_cnn(), input_shape=(1, 8, 8))
    with pytest.raises(MissingDependencyError, match=r"cosep-deploy\[torch-tensorrt\]"), runner:
        pass


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_TORCH_TRT, reason="needs torch-tensorrt and an NVIDIA GPU")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_compiled_model_matches_eager_pytorch(precision: str) -> None:
    from cosep_deploy.backends.torch.runner import TorchRunner
    from cosep_deploy.compare import compare_runners

    model = _tiny_cnn()
    rng = np.random.default_rng(0)
    feeds = [{"input": rng.standard_normal((b, 1, 8, 8), dtype=np.float32)} for b in (1, 3, 8)]
    reference = TorchRunner(model, device="cuda")
    candidate = TorchTensorRTRunner(model, input_shape=(1, 8, 8), batch=(1, 4, 8), precision=precision)
    with reference, candidate:
        result = compare_runners(reference, candidate, feeds, precision=precision, check=True)
        timed = candidate.time_once(feeds[0])
        info = candidate.info()
        with pytest.raises(ConfigError, match="outside the compiled range"):
            candidate.infer({"input": np.zeros((9, 1, 8, 8), np.float32)})
    assert result.passed
    assert timed.seconds > 0 and not timed.includes_copies
    assert info.runtime_version not in ("", "not installed") and info.device != "unknown"
    assert info.settings["device"].startswith("cuda:")  # compiled with an explicit GPU index
    assert info.settings["precision_mode"] in ("fp32", "autocast-fp16", "enabled-precisions-fp16")
