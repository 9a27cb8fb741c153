"""The documented exit codes (docs/exit-codes.md): 0 ok, 1 bad input or state, 2 usage, 3 missing dependency or
hardware, 4 internal error (one line saying how to report it; the traceback with --debug), 130 interrupted."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cosep_deploy.cli.main import cli
from cosep_deploy.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_MISSING, EXIT_USAGE, EXIT_USER
from tests.faults.conftest import assert_one_line, assert_unchanged, invoke, tree_hashes

_INTERRUPTED_LINE = "interrupted; finished stages are kept and the next run resumes\n"


def _process_env() -> dict[str, str]:
    """The environment of a real `python -m cosep_deploy.cli.main` process that imports this checkout."""
    import os

    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


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
    """SIGINT to a real `cosep-deploy train` process once it is working (its `-v` line says it holds the run
    directory's lock): exit code 130 (never death by the signal, -2), one line after the log, no traceback, and
    nothing partial left (the run directory it made is removed again)."""
    import queue
    import signal
    import subprocess
    import sys
    import threading

    run = tmp_path / "r"
    cmd = [
        sys.executable,
        "-X",
        "faulthandler",
        "-m",
        "cosep_deploy.cli.main",
        "-q",
        "-v",
        "train",
        "--run",
        str(run),
        "--epochs",
        "100000",  # never finishes first: the interrupt, honoured at the latest at the first batch, ends it
    ]
    proc = subprocess.Popen(cmd, env=_process_env(), stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    seen: list[str] = []
    while not any("cosep_deploy.rundir: locked" in line for line in seen):
        try:
            seen.append(lines.get(timeout=120))
        except queue.Empty:
            proc.kill()
            raise AssertionError(f"no lock line within 120 s: {seen}") from None
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        proc.wait(timeout=30)
    while True:
        try:
            seen.append(lines.get(timeout=5))
        except queue.Empty:
            break
    err = "".join(seen)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err, err
    assert [line for line in seen if not line.startswith("[")] == [_INTERRUPTED_LINE], err
    assert not run.exists() or not [p for p in run.rglob("*") if p.is_file()], sorted(run.rglob("*"))


@pytest.mark.parametrize(
    ("factory", "epochs", "kept"),
    [
        ("swallowed", 3, False),  # honoured at the first training batch: nothing of the stage is written
        ("swallowed", 0, True),  # no batch to honour it at: the command ends, then exits 130, its stage kept
        ("escaped_nested_run", 3, False),  # CPython would exit -2 here under `python -m`
    ],
)
def test_interrupt_that_third_party_code_swallows_or_marks_still_exits_130(
    tmp_path: Path, factory: str, epochs: int, kept: bool
) -> None:
    """A Ctrl-C that lands in code not ours, the way one lands in torch's or scipy's lazy imports: swallowed
    there (the command used to run to its end and exit 0), or raised out of Python code a C extension ran
    with PyRun_* (the process used to die by SIGINT at exit, -2, after saying it exits 130). The real signal
    is raised inside a model factory (tests/faults/interrupting_models.py), so it lands at a known place."""
    import subprocess
    import sys

    run = tmp_path / "r"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cosep_deploy.cli.main",
            "-q",
            "train",
            "--run",
            str(run),
            "--model",
            f"tests.faults.interrupting_models:{factory}",
            "--epochs",
            str(epochs),
        ],
        env=_process_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (proc.returncode, proc.stderr) == (EXIT_INTERRUPTED, _INTERRUPTED_LINE)
    files = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()) if run.exists() else []
    if kept:
        assert "dense/model.safetensors" in files, files
    else:
        assert files == [], files
