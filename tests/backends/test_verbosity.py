"""``-v``/``-vv`` reach the engines underneath: the TensorRT logger passes INFO and VERBOSE messages on by the
``cosep_deploy`` logger's level (TensorRT hands a custom logger every message), trtexec gets ``--verbose`` only with
``-vv`` or when asked, and every stand-in trtexec release lists ``--verbose``."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from cosep_deploy.backends.tensorrt.engine import TensorRTBuildConfig, engine_from_onnx
from cosep_deploy.backends.tensorrt.runner import TensorRTRunner
from cosep_deploy.backends.trtexec.command import TrtexecConfig, trtexec_command
from cosep_deploy.targets import get_target
from tests.backends.trt_double import install_double
from tests.board.onboard_fixtures import board_tools

pytest.importorskip("onnx")
from tests.backends.test_tensorrt_engine import conv_onnx


def _tensorrt_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "cosep_deploy.tensorrt"]


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.WARNING, []),
        (logging.INFO, [(logging.INFO, "Loaded engine size: 1 MiB")]),
        (
            logging.DEBUG,
            [
                (logging.INFO, "Loaded engine size: 1 MiB"),
                (logging.DEBUG, "Deserialization required 1024 microseconds."),
            ],
        ),
    ],
)
def test_tensorrt_messages_follow_the_level(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture, level: int, expected: list[str]
) -> None:
    install_double(monkeypatch, "10.13")
    engine = tmp_path / "m.engine"
    engine_from_onnx(conv_onnx(tmp_path / "m.onnx"), engine, TensorRTBuildConfig(precision="fp32", batch=(1, 2, 2)))
    caplog.set_level(level, logger="cosep_deploy")
    with TensorRTRunner(engine, check_target=False):
        pass
    got = [line for line in _tensorrt_lines(caplog) if not line[1].startswith("deserializing")]
    assert got == expected


def _load(**kw: object) -> TrtexecConfig:
    return TrtexecConfig(load_engine=Path("m.engine"), **kw)  # type: ignore[arg-type]


def test_trtexec_verbose_only_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cosep_deploy")  # -v: our lines, not trtexec's verbose log
    assert "--verbose" not in trtexec_command(_load(), version=(10, 13, 0))
    assert "--verbose" in trtexec_command(_load(verbose=True), version=(10, 13, 0))
    caplog.set_level(logging.DEBUG, logger="cosep_deploy")  # -vv
    assert "--verbose" in trtexec_command(_load(), version=(8, 5, 2))
    assert "--verbose" not in trtexec_command(_load(verbose=False), version=(8, 5, 2))


def test_every_standin_release_accepts_verbose(tmp_path: Path) -> None:
    releases = sorted(
        {r for t in ("jetson-agx-orin", "jetson-agx-xavier", "jetson-thor") for r in get_target(t).tensorrt_releases}
    )
    assert any(r.startswith("8.5") for r in releases) and any(r.startswith("11") for r in releases)
    for release in releases:
        env = board_tools(tmp_path / release, release)
        trtexec = tmp_path / release / "bin" / "trtexec"
        flags = subprocess.run([str(trtexec), "--help"], env=env, capture_output=True, text=True, check=True).stdout
        assert "  --verbose" in flags.splitlines(), release
