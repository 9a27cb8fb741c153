"""CUDA bindings tried in turn, and the device identity an engine records.

cuda-python 13 needs a driver >= 580, which no JetPack 6 board has: it then answers every call with
``cudaErrorInsufficientDriver``. The old code took the first binding that imported, so the runner failed and
every manifest said "unknown". Here the cuda-python double answers that error and a PyCUDA stand-in (written
from PyCUDA's documented driver API) answers for the GPU: the binding used and the identity recorded must be
PyCUDA's.
"""

from __future__ import annotations

import stat
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from cosep_deploy.backends.tensorrt.cuda import CudaError, DeviceInfo, cuda_api, device_info
from cosep_deploy.backends.tensorrt.engine import engine_from_onnx
from cosep_deploy.backends.tensorrt.identity import device_identity
from cosep_deploy.backends.tensorrt.plan import TensorRTBuildConfig
from tests.backends.cuda_double import make_cuda_runtime
from tests.backends.test_tensorrt_engine import conv_onnx
from tests.backends.trt_double import Gpu, make_double


def pycuda_driver(name: str = "Orin", sms: int = 8, memory: int = 8 << 30) -> types.ModuleType:
    """A stand-in ``pycuda.driver`` with the calls PyCUDA documents for device queries and contexts."""
    drv = types.ModuleType("pycuda.driver")
    drv.__file__ = "/double/pycuda/driver.py"
    drv.device_attribute = types.SimpleNamespace(MULTIPROCESSOR_COUNT=16)  # type: ignore[attr-defined]
    context = types.SimpleNamespace(push=lambda: None, pop=lambda: None)

    class Device:
        def __init__(self, index: int) -> None:
            if index != 0:
                raise RuntimeError("cuDeviceGet failed: invalid device ordinal")

        def name(self) -> str:
            return name

        def compute_capability(self) -> tuple[int, int]:
            return (8, 7)

        def get_attribute(self, attr: int) -> int:
            return sms if attr == 16 else 0

        def total_memory(self) -> int:
            return memory

        def retain_primary_context(self) -> Any:
            return context

    drv.init = lambda: None  # type: ignore[attr-defined]
    drv.Device = Device  # type: ignore[attr-defined]
    return drv


@pytest.fixture
def old_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """cuda-python installed but too new for the driver; PyCUDA working."""
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", make_cuda_runtime(Gpu(driver_ok=False)))
    monkeypatch.setitem(sys.modules, "cuda.cudart", make_cuda_runtime(Gpu(driver_ok=False)))
    monkeypatch.setitem(sys.modules, "pycuda.driver", pycuda_driver())


@pytest.mark.usefixtures("old_driver")
def test_binding_too_new_for_the_driver_falls_back_to_pycuda() -> None:
    api = cuda_api(0)
    assert api.name == "pycuda"
    assert device_info(0) == DeviceInfo("Orin", "8.7", 8, 8 << 30)


@pytest.mark.usefixtures("old_driver")
def test_manifest_identity_comes_from_the_binding_that_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", make_double("10.3")[0])
    manifest = engine_from_onnx(
        conv_onnx(tmp_path / "m.onnx", batch=1), tmp_path / "m.engine", TensorRTBuildConfig(precision="fp32")
    )
    assert (manifest.device_name, manifest.compute_capability, manifest.device_sm_count) == ("Orin", "8.7", 8)
    assert manifest.device_memory_bytes == 8 << 30


def test_no_binding_reaching_the_gpu_says_what_each_one_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", make_cuda_runtime(Gpu(driver_ok=False)))
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)  # not installed
    with pytest.raises(CudaError) as info:
        cuda_api(0)
    assert "cudaErrorInsufficientDriver" in str(info.value) and "cuda.bindings.runtime" in str(info.value)
    assert "torch: torch reports no usable CUDA device" in str(info.value)  # torch tried last (no GPU here)


def test_cuda_python_answers_first_when_the_driver_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", make_cuda_runtime(Gpu(name="NVIDIA H100", sm_count=132)))
    monkeypatch.setitem(sys.modules, "pycuda.driver", pycuda_driver())
    api = cuda_api(0)
    assert api.name == "cuda-python" and api.device(0).sm_count == 132


def _fake_board(tmp_path: Path, model: str, nvpmodel_output: str) -> tuple[Path, str]:
    root = tmp_path / "board"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "nv_tegra_release").write_text("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic\n")
    (root / "proc" / "device-tree").mkdir(parents=True)
    (root / "proc" / "device-tree" / "model").write_text(model + "\x00")
    tools = tmp_path / "bin"
    tools.mkdir()
    script = tools / "nvpmodel"
    script.write_text(f"#!/bin/sh\nprintf '{nvpmodel_output}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return root, str(tools)


def test_identity_on_a_board_names_model_and_power_mode(tmp_path: Path) -> None:
    root, tools = _fake_board(tmp_path, "NVIDIA Jetson AGX Orin Developer Kit", "NV Power Mode: MAXN\\n0\\n")
    identity = device_identity(DeviceInfo("Orin", "8.7", 16, 64 << 30), "10.3.0.30", board_root=root, tools_path=tools)
    assert (identity.board_model, identity.power_mode) == ("NVIDIA Jetson AGX Orin Developer Kit", "MAXN (0)")
    assert identity.tensorrt_package_version == "10.3.0.30"  # no pip or deb package here: the module's version
    fields = identity.manifest_fields()
    assert fields["device_sm_count"] == 16 and fields["power_mode"] == "MAXN (0)"
    off_board = device_identity(DeviceInfo("NVIDIA H100", "9.0", 132, 80 << 30), "10.13.0.35", board_root=tmp_path)
    assert (off_board.board_model, off_board.power_mode) == ("", "")
