"""``-v``/``-vv`` in a real process: our log lines and ONNX Runtime's own go to stderr, ``--json`` on stdout stays
exactly what it is without them, and nothing is added at the default level."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnx")
from tests.backends.test_tensorrt_engine import conv_onnx

ROOT = Path(__file__).resolve().parents[2]
BENCH = ["--batch-sizes", "1", "--iterations", "5", "--min-seconds", "0", "--warmup", "0", "--warmup-seconds", "0"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "cosep_deploy.cli.main", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    d = tmp_path_factory.mktemp("verbose")
    return str(conv_onnx(d / "a.onnx")), str(conv_onnx(d / "b.onnx"))


def _json_shape(stdout: str) -> object:
    """The --json document with the timings taken out (they differ run to run)."""
    doc = json.loads(stdout)
    return {name: {b: sorted(s) for b, s in per.items()} for name, per in doc.items()}


def test_vv_logs_to_stderr_and_json_stays_clean(pair: tuple[str, str]) -> None:
    quiet = _cli("bench", "--files", *pair, *BENCH, "--json")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""  # nothing at the default level
    loud = _cli("-vv", "bench", "--files", *pair, *BENCH, "--json")
    assert loud.returncode == 0, loud.stderr
    assert _json_shape(loud.stdout) == _json_shape(quiet.stdout)  # stdout: the JSON document only
    assert f"[INFO] cosep_deploy.backends.onnxruntime.runner: loading {pair[0]}" in loud.stderr
    assert "onnxruntime" in loud.stderr.lower() and " [V:onnxruntime:" in loud.stderr  # ORT's verbose log


def test_v_after_the_command_and_counted(pair: tuple[str, str]) -> None:
    info = _cli("bench", "-v", "--files", *pair, *BENCH, "--json")
    assert info.returncode == 0, info.stderr
    assert "[INFO] cosep_deploy" in info.stderr and " [V:onnxruntime:" not in info.stderr  # -v: not ORT's verbose
    both = _cli("-v", "bench", "-v", "--files", *pair, *BENCH, "--json")  # -v twice = -vv
    assert " [V:onnxruntime:" in both.stderr
    json.loads(both.stdout)
