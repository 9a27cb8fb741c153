"""Read-only and full disks, for real: a small tmpfs (skipped where this process may not mount one)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import assert_one_line, assert_unchanged, invoke, tree_hashes


def _mount(point: Path, size: str) -> bool:
    point.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)], capture_output=True)
    except OSError:
        return False
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    point = tmp_path / "disk"
    if not _mount(point, "24m"):
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _remount_read_only(point: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)


def test_report_in_a_read_only_run_directory_prints_to_stdout(fault_base_run: Path, small_disk: Path) -> None:
    run = small_disk / "run"
    shutil.copytree(fault_base_run, run)
    (run / "report.md").unlink()
    _remount_read_only(small_disk)
    result = invoke("report", "--run", str(run), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"] == str(run)
    assert "not written" in result.stderr and "Traceback" not in result.output
    table = invoke("report", "--run", str(run))
    assert table.exit_code == 0 and "top-1" in table.stdout


def test_writing_commands_in_a_read_only_run_directory(fault_base_run: Path, small_disk: Path) -> None:
    run = small_disk / "run"
    shutil.copytree(fault_base_run, run)
    _remount_read_only(small_disk)
    before = tree_hashes(run)
    for args in (["profile", "--run", str(run)], ["bench", "--run", str(run)], ["prune", "--run", str(run)]):
        assert_one_line(invoke(*args), 1, "not writable")
    assert tree_hashes(run) == before


def _fill(point: Path, leave: int) -> None:
    stat = shutil.disk_usage(point)
    with open(point / "filler", "wb") as fh:
        fh.write(b"\0" * max(stat.free - leave, 0))


@pytest.mark.parametrize("command", ["export", "prune", "train"])
def test_disk_full_is_one_line_and_nothing_partial(fault_base_run: Path, small_disk: Path, command: str) -> None:
    run = small_disk / "run"
    shutil.copytree(fault_base_run, run, ignore=shutil.ignore_patterns("*.fp16.onnx", "*.int8.onnx", "engines"))
    _fill(small_disk, 64 * 1024)
    before = tree_hashes(run)
    args = {"train": ["--epochs", "0"], "prune": ["--images-per-class", "8"], "export": []}[command]
    result = invoke(command, "--run", str(run), *args)
    assert_one_line(result, 1, "no space left")
    assert_unchanged(before, tree_hashes(run))
    leftovers = [p for p in run.rglob(".*") if p.name.endswith((".staging", ".tmp", ".old"))]
    assert leftovers == []
