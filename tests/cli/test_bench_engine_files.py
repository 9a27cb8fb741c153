"""``bench --files`` and ``compare`` with TensorRT engine files, as trtexec users bring them (no manifest): without
TensorRT, exit 3 and one line saying so; a corrupt engine, one line; engines of the TensorRT double time fine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cosep_deploy.cli.main import cli
from cosep_deploy.errors import EXIT_MISSING, EXIT_USER
from tests.backends.trt_double import install_double
from tests.faults.conftest import assert_one_line

pytest.importorskip("onnx")
from tests.backends.test_tensorrt_engine import conv_onnx

BENCH = ["--batch-sizes", "1", "--iterations", "5", "--min-seconds", "0", "--warmup", "0", "--warmup-seconds", "0"]


def _tensorrt_installed() -> bool:
    from cosep_deploy.deps import require
    from cosep_deploy.errors import MissingDependencyError

    try:
        require("tensorrt")
    except MissingDependencyError:
        return False
    return True


def _invoke(*args: str) -> object:
    return CliRunner().invoke(cli, ["--quiet", *args])


@pytest.mark.parametrize("suffix", [".engine", ".plan"])
def test_engine_files_without_tensorrt_exit_3(tmp_path: Path, suffix: str) -> None:
    if _tensorrt_installed():
        pytest.skip("TensorRT is installed here")
    engine = tmp_path / f"model{suffix}"
    engine.write_bytes(b"a serialized engine from another machine")
    onnx_file = str(conv_onnx(tmp_path / "m.onnx"))
    for args in (
        ["bench", "--files", str(engine), onnx_file, *BENCH],
        ["bench", "--files", onnx_file, str(engine), *BENCH, "--json"],
        ["compare", "--reference", onnx_file, "--candidate", str(engine)],
    ):
        line = assert_one_line(_invoke(*args), EXIT_MISSING, "tensorrt", "not installed")  # type: ignore[arg-type]
        assert "build" not in line and "manifest" not in line, line


def test_corrupt_engine_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    install_double(monkeypatch, "10.13")
    engine = tmp_path / "broken.engine"
    engine.write_bytes(b"\x00" * 64)
    onnx_file = str(conv_onnx(tmp_path / "m.onnx"))
    result = _invoke("bench", "--files", str(engine), onnx_file, *BENCH)
    assert_one_line(result, EXIT_USER, f"TensorRT cannot deserialize {engine}", "Magic tag")  # type: ignore[arg-type]


def test_engines_without_manifest_are_timed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """trtexec's --saveEngine writes no manifest: the engines load as trtexec would load them."""
    from cosep_deploy.backends.tensorrt.engine import TensorRTBuildConfig, engine_from_onnx
    from cosep_deploy.engines.manifest import manifest_path_for

    install_double(monkeypatch, "10.13")
    engines = []
    for name in ("a", "b"):
        engine = tmp_path / f"{name}.plan"
        engine_from_onnx(
            conv_onnx(tmp_path / f"{name}.onnx"), engine, TensorRTBuildConfig(precision="fp32", batch=(1, 1, 1))
        )
        manifest_path_for(engine).unlink()
        engines.append(str(engine))
    result = _invoke("bench", "--files", *engines, *BENCH, "--json")
    assert result.exit_code == 0, (result.output, result.exception)  # type: ignore[attr-defined]
    assert set(json.loads(result.stdout)) == {"candidate"}  # type: ignore[attr-defined]


def test_compare_onnx_with_an_engine_without_manifest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from cosep_deploy.backends.tensorrt.engine import TensorRTBuildConfig, engine_from_onnx
    from cosep_deploy.engines.manifest import manifest_path_for

    install_double(monkeypatch, "10.13")
    onnx_file = conv_onnx(tmp_path / "m.onnx")
    engine = tmp_path / "m.engine"
    engine_from_onnx(onnx_file, engine, TensorRTBuildConfig(precision="fp32", batch=(1, 8, 8)))
    manifest_path_for(engine).unlink()
    args = ["compare", "--reference", str(onnx_file), "--candidate", str(engine), "--samples", "8"]
    usage = _invoke(*args)
    assert usage.exit_code == 2 and "give --precision" in usage.stderr  # type: ignore[attr-defined]
    result = _invoke(*args, "--precision", "fp32")
    assert result.exit_code == 0, (result.output, result.exception)  # type: ignore[attr-defined]
