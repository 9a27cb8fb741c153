"""The ONNX/TensorRT compatibility table and check: opset and operators per release, export at 17."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cosep_deploy.cli.main import cli
from cosep_deploy.errors import ExportError
from cosep_deploy.onnx_compat import (
    DEFAULT_OPSET,
    check_onnx,
    opset_for_releases,
    release_support,
    require_compatible,
    support_table,
)
from cosep_deploy.targets import list_targets

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _model(path: Path, opset: int, op: str = "Relu", domain: str = "") -> Path:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3, 8, 8])
    node = helper.make_node(op, ["input"], ["output"], domain=domain)
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=imports)
    onnx.save(model, path)
    return path


def test_table_rows_and_release_lookup() -> None:
    rows = {r.release: r for r in support_table()}
    assert set(rows) == {"8.5", "8.6", "10.3", "10.13", "10.15", "11"}
    assert rows["8.5"].opset_max == rows["8.6"].opset_max == 17  # onnx-tensorrt 8.5-GA/8.6-GA docs
    assert rows["11"].opset_max == 25
    for op in ("Conv", "Relu", "ReduceMean", "GlobalAveragePool", "QuantizeLinear", "DequantizeLinear", "Cast"):
        assert all(op in r.operators for r in rows.values()), op
    assert "LayerNormalization" not in rows["8.5"].operators and "LayerNormalization" in rows["8.6"].operators
    assert release_support("8.5.2").release == "8.5"
    assert release_support("10.16").release == "10.15"
    assert release_support("11.4.1").release == "11"
    assert release_support("10.12.0.36").release == "10.3"


def test_export_opset_is_one_every_release_of_every_target_parses() -> None:
    for target in list_targets():
        if target.tensorrt_releases:
            assert opset_for_releases(target.tensorrt_releases) >= DEFAULT_OPSET, target.name
    assert opset_for_releases(["8.5.2", "10.3"]) == 17
    assert opset_for_releases(["10.13", "11.4"]) == 22
    assert DEFAULT_OPSET == 17


def test_verdicts_name_operator_release_and_fix(tmp_path: Path) -> None:
    ok = check_onnx(_model(tmp_path / "ok.onnx", 17), ["8.5.2", "11.4"])
    assert [v.ok for v in ok] == [True, True]
    v18 = check_onnx(_model(tmp_path / "o18.onnx", 18), ["8.5.2", "8.6", "10.3"])
    assert [v.ok for v in v18] == [False, False, True]
    assert "opset 18" in v18[0].problems[0] and "--opset 17" in v18[0].problems[0]
    ln = check_onnx(_model(tmp_path / "ln.onnx", 17, "LayerNormalization"), ["8.5.2", "8.6"])
    assert not ln[0].ok and "LayerNormalization" in ln[0].problems[0] and "8.5.2" in ln[0].problems[0]
    assert ln[1].ok
    custom = check_onnx(_model(tmp_path / "c.onnx", 17, "MyOp", domain="com.example"), ["10.3"])
    assert "plugin" in custom[0].problems[0]
    with pytest.raises(ExportError, match=r"TensorRT 8\.5\.2: operator LayerNormalization"):
        require_compatible(tmp_path / "ln.onnx", ["8.5.2", "8.6"])


def test_check_command_text_and_json(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = _model(tmp_path / "o18.onnx", 18)
    res = runner.invoke(cli, ["check", "--target", "jetson-agx-orin", str(bad)])
    assert res.exit_code == 1
    assert "TensorRT 8.5.2: REFUSED" in res.output and "TensorRT 10.3.0: ok" in res.output
    good = _model(tmp_path / "o17.onnx", 17)
    res = runner.invoke(cli, ["check", "--target", "jetson-thor", "--json", str(good)])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["ok"] and [r["release"] for r in doc["releases"]] == ["10.13", "10.16", "11.4.1"]
    res = runner.invoke(cli, ["check", "--target", "cpu-onnxruntime", str(good)])
    assert res.exit_code == 1 and "no TensorRT release" in res.output


def test_export_writes_the_requested_opset_with_reduce_mean(tmp_path: Path) -> None:
    """torch's exporter silently kept opset 18 for AdaptiveAvgPool (ReduceMean with axes as an input)."""
    torch = pytest.importorskip("torch")
    from cosep_deploy.export.onnx import ExportConfig, onnx_from_model

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    )
    art = onnx_from_model(
        model, torch.randn(4, 3, 8, 8), tmp_path / "m.onnx", ExportConfig(tensorrt_releases=("8.5.2",))
    )
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert art.opset == 17 and [o.version for o in proto.opset_import if o.domain == ""] == [17]
    assert all(v.ok for v in check_onnx(proto, ["8.5.2", "8.6", "10.3", "11.4"]))
    onnx.checker.check_model(proto, full_check=True)
