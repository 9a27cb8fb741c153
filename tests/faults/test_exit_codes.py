"""The documented exit codes (docs/exit-codes.md): 0 ok, 1 bad input or state, 2 usage, 3 missing dependency or
hardware, 4 internal error (one line saying how to report it; the traceback with --debug), 130 interrupted."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cosep_deploy.cli.main import cli
from cosep_deploy.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_MISSING, EXIT_USAGE, EXIT_USER
from tests.faults.conftest import assert_one_line, assert_unchanged, invoke, tree_hashes


def test_ok_is_zero(run_copy: Path) -> None:
    assert invoke("report", "--run", str(run_copy)).exit_code == 0


def test_usage_is_two() -> None:
    assert invoke("bench", "--no-such-option").exit_code == EXIT_USAGE
    assert invoke("bench").exit_code == EXIT_USAGE  # --run is required


def test_bad_input_is_one(tmp_path: Path) -> None:
    result = invoke("pipeline", "--out", str(tmp_path / "r"), "--model", "resnet21", "--epochs", "0")
    assert_one_line(result, EXIT_USER, "resnet21")
    assert not (tmp_path / "r").exists()


def test_missing_dependency_is_three(run_copy: Path) -> None:
    pytest.importorskip("cosep_deploy.deps")
    from cosep_deploy.deps import require
    from cosep_deploy.errors import MissingDependencyError

    try:
        require("tensorrt")
    except MissingDependencyError:
        pass
    else:
        pytest.skip("TensorRT is installed here")
    before = tree_hashes(run_copy)
    result = invoke("build", "--run", str(run_copy), "--target", "dgpu-ampere-plus")
    assert_one_line(result, EXIT_MISSING, "tensorrt")
    assert_unchanged(before, tree_hashes(run_copy))


def _break_report(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """A bug (or Ctrl-C) inside a command: the summary assembly raises."""
    import cosep_deploy.pipeline.deploy as deploy

    def broken(run: object) -> None:
        raise exc

    monkeypatch.setattr(deploy, "summary_rows", broken)


def test_internal_error_is_four_with_how_to_report(run_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _break_report(monkeypatch, ZeroDivisionError("float division by zero"))
    line = assert_one_line(invoke("report", "--run", str(run_copy)), EXIT_INTERNAL, "internal error", "--debug")
    assert "report it" in line and "ZeroDivisionError" in line


def test_debug_shows_the_traceback(run_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _break_report(monkeypatch, ZeroDivisionError("float division by zero"))
    result = CliRunner().invoke(cli, ["--quiet", "--debug", "report", "--run", str(run_copy)])
    assert isinstance(result.exception, ZeroDivisionError)  # propagated: click's runner keeps the traceback
    assert result.exit_code != 0


def test_interrupt_is_130(run_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _break_report(monkeypatch, KeyboardInterrupt())
    assert_one_line(invoke("report", "--run", str(run_copy)), EXIT_INTERRUPTED, "interrupted")
    assert not (run_copy / ".cosep-deploy.lock").exists()


def test_interrupt_in_a_real_process_exits_130(tmp_path: Path) -> None:
    """SIGINT to a real `cosep-deploy train` process: exit code 130, one line, no traceback."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cosep_deploy.cli.main",
            "--quiet",
            "train",
            "--run",
            str(tmp_path / "r"),
            "--epochs",
            "50",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "r" / ".cosep-deploy.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    # 130, or death by SIGINT (-2) when the interrupt lands where Python re-raises it at exit: a shell reports
    # both as 130
    assert proc.returncode in (EXIT_INTERRUPTED, -signal.SIGINT), err
    assert "Traceback" not in err and len([x for x in err.splitlines() if x.strip()]) == 1, err
