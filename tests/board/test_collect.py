"""collect: a board's results come back into the run only if they belong to the bundle and the run; report
shows them beside the host's numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cosep_deploy.board.bundle import jetson_bundle_from_onnx
from cosep_deploy.board.collect import board_report_lines, collect_board_results
from cosep_deploy.cli.main import cli
from cosep_deploy.errors import ConfigError
from cosep_deploy.targets import get_target
from tests.board.onboard_fixtures import BASH, board_tools, conv_model, model_pair, run_bundle

pytestmark = pytest.mark.skipif(BASH is None, reason="the bundle's script needs bash")


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run directory with dense/pruned ONNX (fp32, fp16) and its bundle, run on a stand-in 10.3 board."""
    tmp = tmp_path_factory.mktemp("collect")
    run = tmp / "run"
    models = model_pair(tmp / "src", ("fp32", "fp16"))
    (run / "onnx").mkdir(parents=True)
    for model, files in models.items():
        for precision, path in files.items():
            name = f"{model}.onnx" if precision == "fp32" else f"{model}.{precision}.onnx"
            shutil.copyfile(path, run / "onnx" / name)
    (run / "bench").mkdir()
    host = {
        "settings": {"precision": "fp32"},
        "speedups": {"pruned": {"1": {"speedup": 1.8, "ci_low": 1.7, "ci_high": 1.9}}},
    }
    (run / "bench" / "bench.json").write_text(json.dumps(host))
    bundle = jetson_bundle_from_onnx(models, get_target("jetson-orin-nano"), tmp / "bundle", batch_sizes=(1, 2))
    proc = run_bundle(bundle, board_tools(tmp, "10.3.0"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return run, bundle


def test_collect_and_report(ran: tuple[Path, Path], tmp_path: Path) -> None:
    run, bundle = ran
    result = CliRunner().invoke(cli, ["collect", "--run", str(run), str(bundle)])
    assert result.exit_code == 0, result.output
    assert "collected 8 engine manifests and 4 dense/pruned timings" in result.output
    out = run / "board" / "jetson-orin-nano"
    assert {p.name for p in (out / "engines").iterdir()} == {
        f"{m}.{p}.b{b}.manifest.json" for m in ("dense", "pruned") for p in ("fp32", "fp16") for b in (1, 2)
    }
    assert json.loads((out / "collected.json").read_text())["tensorrt_version"] == "10.3.0"
    lines = board_report_lines(run)
    text = "\n".join(lines)
    assert "## On the board" in text and "TensorRT 10.3.0" in text and "Power mode MAXN" in text
    rows = [line for line in lines if line.startswith("| fp")]
    assert len(rows) == 4
    assert any(r.startswith("| fp32 | 1 |") and r.endswith("| 1.80x [1.70, 1.90] |") for r in rows)  # host beside
    assert "W;" in text  # tegrastats power during timing


def test_collect_refuses_what_does_not_belong(ran: tuple[Path, Path], tmp_path: Path) -> None:
    run, bundle = ran
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    board = json.loads((copy / "results" / "board.json").read_text())
    (copy / "results" / "board.json").write_text(json.dumps({**board, "bundle_id": "0" * 16}))
    with pytest.raises(ConfigError, match="not from this bundle"):
        collect_board_results(run, copy)
    (copy / "results" / "board.json").write_text(json.dumps(board))
    manifest = copy / "engines" / "pruned.fp16.b2.manifest.json"
    raw = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**raw, "device_name": None}))
    with pytest.raises(ConfigError, match="did not fill: device_name"):
        collect_board_results(run, copy)
    manifest.write_text(json.dumps({**raw, "onnx_sha256": "f" * 64}))
    with pytest.raises(ConfigError, match="another engine"):
        collect_board_results(run, copy)
    manifest.write_text(json.dumps(raw))
    other_run = tmp_path / "other"
    shutil.copytree(run, other_run)
    conv_model(other_run / "onnx" / "pruned.fp16.onnx", 8, "fp16")  # re-exported since the bundle was written
    with pytest.raises(ConfigError, match="not this run's"):
        collect_board_results(other_run, copy)
    (copy / "onnx" / "dense.fp32.onnx").write_bytes(b"x")
    with pytest.raises(ConfigError, match="changed since the bundle was written"):
        collect_board_results(run, copy)
    result = CliRunner().invoke(cli, ["collect", "--run", str(run), str(tmp_path / "missing")])
    assert result.exit_code == 1 and result.output.startswith("error: ")
