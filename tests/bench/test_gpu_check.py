"""``make gpu-check`` (bench/gpu_check.py) on a machine without a GPU: one line, exit 0, nothing run or written.

The GPU path itself runs only where torch sees a CUDA device (``@pytest.mark.gpu``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.gpu_check import gpu_name, main

ROOT = Path(__file__).resolve().parents[2]
NO_GPU = gpu_name() is None


@pytest.mark.skipif(not NO_GPU, reason="a GPU is visible here")
def test_without_a_gpu_one_line_and_exit_0(tmp_path: Path) -> None:
    out = tmp_path / "check.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "no NVIDIA GPU" in lines[0] and "nothing was run" in lines[0]
    assert not out.exists()


@pytest.mark.skipif(not NO_GPU, reason="a GPU is visible here")
def test_main_without_a_gpu_returns_0_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path / "x.json")]) == 0
    assert capsys.readouterr().out.count("\n") == 1 and not (tmp_path / "x.json").exists()


@pytest.mark.gpu
@pytest.mark.skipif(NO_GPU, reason="needs an NVIDIA GPU")
def test_gpu_check_writes_one_json(tmp_path: Path) -> None:
    out = tmp_path / "check.json"
    assert main(["--out", str(out)]) == 0
    result = json.loads(out.read_text())
    for name in ("resnet20", "resnet50"):
        batches = result["models"][name]["torch_cuda"]["batches"]
        assert set(batches) == {"1", "8"} and all(b["speedup"] > 0 for b in batches.values())
