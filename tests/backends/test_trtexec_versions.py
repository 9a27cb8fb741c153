"""trtexec version gates by feature and full version, and TensorRT 11's --exportLayerInfo format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cosep_deploy.backends.trtexec.command import TrtexecConfig, trtexec_command
from cosep_deploy.backends.trtexec.parse import parse_layer_info
from cosep_deploy.errors import BenchError, ConfigError


def _cfg(**kw: object) -> TrtexecConfig:
    base: dict[str, object] = {"onnx": Path("m.onnx"), "save_engine": Path("m.engine")}
    base.update(kw)
    return TrtexecConfig(**base)  # type: ignore[arg-type]


def test_skip_inference_only_from_8_6() -> None:
    assert "--skipInference" in trtexec_command(_cfg(skip_inference=True), version=(8, 6, 1))
    old = trtexec_command(_cfg(skip_inference=True), version=(8, 5, 2))
    assert "--skipInference" not in old and "--iterations=1" in old and "--duration=0" in old


def test_percentile_lists_by_full_version() -> None:
    assert "--percentile=90,99" in trtexec_command(_cfg(percentiles=(90, 99)), version=(8, 6, 0))
    with pytest.raises(ConfigError, match="single --percentile"):
        trtexec_command(_cfg(percentiles=(90, 99)), version=(8, 5, 3))
    assert "--percentile=99" in trtexec_command(_cfg(percentiles=(99,)), version=(8, 5, 2))


def test_separate_profile_run_not_on_11() -> None:
    cfg = _cfg(export_profile=Path("p.json"))
    assert "--separateProfileRun" in trtexec_command(cfg, version=(10, 13, 0))
    assert "--separateProfileRun" not in trtexec_command(cfg, version=(11, 0, 0))


def test_dla_core_flags() -> None:
    cmd = trtexec_command(TrtexecConfig(load_engine=Path("e"), dla_core=1), version=(10, 3, 0))
    assert "--useDLACore=1" in cmd and "--allowGPUFallback" in cmd


# A TensorRT 11 engine-inspector export as the review describes it (no "Bindings"; each tensor's
# "Format/Datatype" split into "Format" and "Datatype"); field names otherwise as in 10.x exports.
LAYERS_11 = {
    "Layers": [
        {
            "Name": "Reformatting CopyNode for Input Tensor 0 to /conv1/Conv",
            "LayerType": "Reformat",
            "Inputs": [
                {
                    "Name": "input",
                    "Location": "Device",
                    "Dimensions": [1, 3, 32, 32],
                    "Format": "Row major linear",
                    "Datatype": "FP32",
                }
            ],
            "Outputs": [
                {
                    "Name": "input_r",
                    "Location": "Device",
                    "Dimensions": [1, 3, 32, 32],
                    "Format": "Channel major format where channel % 8 == 0",
                    "Datatype": "FP16",
                }
            ],
            "TacticValue": "0x0",
        },
        {
            "Name": "/conv1/Conv + /relu/Relu",
            "LayerType": "CaskConvolution",
            "Inputs": [
                {"Name": "input_r", "Format": "Channel major format where channel % 8 == 0", "Datatype": "FP16"}
            ],
            "Outputs": [{"Name": "output", "Format": "Row major linear", "Datatype": "FP16"}],
            "TacticName": "sm80_xmma_fprop_implicit_gemm",
        },
    ]
}


def test_layer_info_11_format(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    path.write_text(json.dumps(LAYERS_11))
    info = parse_layer_info(path)
    assert len(info.layers) == 2 and info.detailed
    assert info.bindings == ("input", "output")
    assert info.layers[0].is_reformat and info.reformat_layers == (LAYERS_11["Layers"][0]["Name"],)
    assert info.layers[0].output_formats == ("Channel major format where channel % 8 == 0 FP16",)
    assert info.layers[1].tactic == "sm80_xmma_fprop_implicit_gemm"


def test_layer_info_refuses_tensors_without_formats_and_empty_files(tmp_path: Path) -> None:
    bad = {"Layers": [{"Name": "x", "LayerType": "Conv", "Inputs": [{"Name": "i"}], "Outputs": []}]}
    (tmp_path / "b.json").write_text(json.dumps(bad))
    with pytest.raises(BenchError, match="no 'Format/Datatype'"):
        parse_layer_info(tmp_path / "b.json")
    (tmp_path / "e.json").write_text(json.dumps({"Layers": []}))
    with pytest.raises(BenchError, match="non-empty"):
        parse_layer_info(tmp_path / "e.json")
