"""Eager PyTorch runner: same numbers as the ONNX export, a clean lifecycle, honest settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cosep_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner
from cosep_deploy.backends.torch.runner import TorchRunner
from cosep_deploy.compare import compare_runners
from cosep_deploy.errors import ConfigError, EngineLoadError
from cosep_deploy.export import onnx_from_model


@pytest.fixture(scope="module")
def images(digits8: Any) -> np.ndarray:
    return torch.stack([digits8.val[i][0] for i in range(64)]).numpy()


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory, trained_resnet20: torch.nn.Module, images: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("torch_runner") / "m.onnx"
    onnx_from_model(trained_resnet20, torch.from_numpy(images[:16]), path)
    return path


def test_matches_onnx_runtime_within_fp32_tolerance(
    trained_resnet20: torch.nn.Module, onnx_file: Path, images: np.ndarray
) -> None:
    feeds = [{"input": images[:32]}, {"input": images[32:]}]
    with TorchRunner(trained_resnet20, threads=1) as torch_runner, OnnxRuntimeRunner(onnx_file) as ort_runner:
        got = torch_runner.infer(feeds[0])
        assert set(got) == {"logits"} and got["logits"].dtype == np.float32 and got["logits"].shape == (32, 10)
        np.testing.assert_allclose(got["logits"], ort_runner.infer(feeds[0])["logits"], rtol=1e-3, atol=1e-4)
        result = compare_runners(ort_runner, torch_runner, feeds, precision="fp32", check=True)
    assert result.passed and result.outputs["logits"].agreement == 1.0 and result.samples == 64


def test_info_and_timing(trained_resnet20: torch.nn.Module, images: np.ndarray) -> None:
    runner = TorchRunner(trained_resnet20, threads=1, channels_last=True, input_shape=(1, 8, 8))
    with runner:
        info = runner.info()
        timed = runner.time_once({"input": images[:8]})
        out = runner.infer({"input": images[:8]})["logits"]
    assert info.backend == "torch" and info.runtime_version == torch.__version__ and info.device == "cpu"
    assert info.precision == "fp32" and info.input_names == ("input",) and info.output_names == ("logits",)
    assert info.input_shapes == {"input": ("batch", 1, 8, 8)}
    assert info.settings["threads"] == 1 and info.settings["channels_last"] is True
    assert info.settings["cuda_graphs"] is False
    assert timed.seconds > 0 and timed.includes_copies
    with torch.no_grad():
        ref = trained_resnet20.eval()(torch.from_numpy(images[:8])).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_callers_model_and_threads_are_left_alone(trained_resnet20: torch.nn.Module, images: np.ndarray) -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).train()
    before = [p.detach().clone() for p in model.parameters()]
    threads = torch.get_num_threads()
    with TorchRunner(model, threads=1) as runner:
        assert torch.get_num_threads() == 1
        runner.infer({"input": images[:4]})
    assert torch.get_num_threads() == threads
    assert model.training  # the runner switched its own copy to eval, not the caller's module
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_invalid_requests_are_refused(trained_resnet20: torch.nn.Module, images: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="CUDA only"):
        TorchRunner(trained_resnet20, precision="fp16")
    with pytest.raises(ConfigError, match="int8 ONNX"):
        TorchRunner(trained_resnet20, precision="int8")
    with pytest.raises(ConfigError, match="CUDA graphs"):
        TorchRunner(trained_resnet20, cuda_graphs=True)
    with pytest.raises(ConfigError, match="TF32"):
        TorchRunner(trained_resnet20, tf32=True)
    with pytest.raises(ConfigError, match="device"):
        TorchRunner(trained_resnet20, device="tpu")
    with TorchRunner(trained_resnet20) as runner, pytest.raises(ConfigError, match="missing from the feed"):
        runner.infer({"x": images[:2]})
    if not torch.cuda.is_available():
        with (
            pytest.raises(EngineLoadError, match="CUDA is not available"),
            TorchRunner(trained_resnet20, device="cuda"),
        ):
            pass
    two_outputs = TorchRunner(trained_resnet20, output_names=("logits", "features"))
    with two_outputs, pytest.raises(ConfigError, match="returns 1 outputs"):
        two_outputs.infer({"input": images[:2]})


@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_cuda_fp32_fp16_and_graphs(trained_resnet20: torch.nn.Module, images: np.ndarray, cuda_graphs: bool) -> None:
    feed = {"input": images[:16]}
    with TorchRunner(trained_resnet20) as cpu:
        ref = cpu.infer(feed)["logits"]
    with TorchRunner(trained_resnet20, device="cuda", cuda_graphs=cuda_graphs) as fp32:
        np.testing.assert_allclose(fp32.infer(feed)["logits"], ref, rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(fp32.infer(feed)["logits"], ref, rtol=1e-3, atol=1e-3)  # a replay, with graphs
        timed = fp32.time_once(feed)
        assert timed.seconds > 0 and not timed.includes_copies
        assert fp32.info().device != "cpu" and fp32.info().settings["cuda_graphs"] is cuda_graphs
        cudnn: Any = torch.backends.cudnn
        assert cudnn.conv.fp32_precision == "ieee"  # true fp32 while active, not TF32
    with TorchRunner(trained_resnet20, device="cuda", precision="fp16", cuda_graphs=cuda_graphs) as fp16:
        out = fp16.infer(feed)["logits"]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=2e-2, atol=2e-2)
    assert (out.argmax(-1) == ref.argmax(-1)).mean() >= 0.99
