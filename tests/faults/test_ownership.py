"""Ownership and locking: the tool writes only into run directories, never deletes what it did not write, and
one writer at a time holds a run directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cosep_deploy.rundir import LOCK_FILE, MARKER_FILE
from tests.faults.conftest import assert_one_line, assert_unchanged, invoke, tree_hashes


def test_pipeline_into_a_foreign_directory_is_refused(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "bench" / "results").mkdir(parents=True)
    (checkout / "bench" / "compare_methods.py").write_text("print('mine')\n")
    (checkout / "bench" / "results" / "table.md").write_text("| a |\n")
    before = tree_hashes(checkout)
    result = invoke("pipeline", "--out", str(checkout), "--epochs", "0", "--finetune-epochs", "0")
    assert_one_line(result, 1, "not a cosep-deploy run directory", "nothing was changed")
    assert tree_hashes(checkout) == before
    assert not (checkout / MARKER_FILE).exists()


def test_every_writing_command_refuses_a_foreign_directory(tmp_path: Path) -> None:
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("keep me")
    before = tree_hashes(foreign)
    for args in (["train", "--epochs", "0"], ["prune"], ["export"], ["build"], ["bench"], ["report"]):
        result = invoke(*args, "--run", str(foreign))
        assert_one_line(result, 1, str(foreign))
        assert tree_hashes(foreign) == before, args


def test_missing_run_directory_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert_one_line(invoke("bench", "--run", str(missing)), 1, "does not exist")
    assert not missing.exists()


def test_unknown_target_is_named_not_a_missing_engine(run_copy: Path) -> None:
    before = tree_hashes(run_copy)
    line = assert_one_line(invoke("bench", "--run", str(run_copy), "--target", "nosuch"), 1, "nosuch")
    assert "missing" not in line and "engine" not in line
    assert_unchanged(before, tree_hashes(run_copy))


def test_bench_keeps_profile_sweep_and_user_files(run_copy: Path) -> None:
    bench = run_copy / "bench"
    (bench / "alignment.json").write_text('{"recommended": 8}\n')
    (bench / "my notes.txt").write_text("mine")
    before = tree_hashes(run_copy)
    assert (bench / "layers.json").is_file()
    result = invoke("bench", "--run", str(run_copy), "--batch-sizes", "1", "--iterations", "5", "--min-seconds", "0")
    assert result.exit_code == 0, result.output
    assert_unchanged(before, tree_hashes(run_copy), owned=["bench/bench.json"])


def test_stale_staging_is_cleaned_by_the_next_command(run_copy: Path) -> None:
    staging = run_copy / "onnx" / ".onnx.k2j4h5g6.staging"
    staging.mkdir()
    (staging / "dense.onnx").write_bytes(b"half")
    tmp_file = run_copy / "dense" / ".model.json.a1b2c3d4.tmp"
    tmp_file.write_text("{")
    old = run_copy / ".bench.old"
    old.mkdir()
    user_hidden = run_copy / ".my-settings"
    user_hidden.write_text("keep")
    user_tmp = run_copy / "bench" / ".draft.tmp"  # not a name the tool writes: kept
    user_tmp.write_text("keep")
    result = invoke("report", "--run", str(run_copy))
    assert result.exit_code == 0, result.output
    assert not staging.exists() and not tmp_file.exists() and not old.exists()
    assert user_hidden.read_text() == "keep" and user_tmp.read_text() == "keep"


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_second_writer_is_refused_naming_the_holder(run_copy: Path) -> None:
    holder = _sleeper()
    try:
        import socket

        lock = {"pid": holder.pid, "host": socket.gethostname(), "command": "cosep-deploy prune", "started": 0}
        (run_copy / LOCK_FILE).write_text(json.dumps(lock))
        before = tree_hashes(run_copy)
        result = invoke("prune", "--run", str(run_copy))
        assert_one_line(result, 1, f"pid {holder.pid}", "cosep-deploy prune")
        assert tree_hashes(run_copy) == before
    finally:
        holder.kill()
        holder.wait()


def test_dead_holders_lock_is_cleared(run_copy: Path) -> None:
    import socket

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock = {"pid": gone.pid, "host": socket.gethostname(), "command": "cosep-deploy pipeline", "started": 0}
    (run_copy / LOCK_FILE).write_text(json.dumps(lock))
    result = invoke("report", "--run", str(run_copy))
    assert result.exit_code == 0, result.output
    assert not (run_copy / LOCK_FILE).exists()


def test_lock_is_released_after_a_failure(run_copy: Path) -> None:
    (run_copy / "pruned" / "plan.json").write_text("{")
    assert invoke("export", "--run", str(run_copy)).exit_code == 1
    assert not (run_copy / LOCK_FILE).exists()


def test_pruned_weights_are_world_readable(fault_base_run: Path) -> None:
    for stage in ("pruned", "finetuned"):
        mode = os.stat(fault_base_run / stage / "weights.safetensors").st_mode & 0o777
        assert mode == 0o666 & ~_umask(), oct(mode)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
