"""Bad inputs that used to end in a traceback: one line naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from cosep_deploy.cli.main import cli
from tests.faults.conftest import assert_one_line, assert_unchanged, invoke, tree_hashes


def _three_channel_onnx(path: Path) -> Path:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    torch.onnx.export(
        model.eval(),
        (torch.zeros(1, 3, 8, 8),),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        dynamo=False,
    )
    return path


def test_compare_models_with_other_input_shapes_names_both(run_copy: Path, tmp_path: Path) -> None:
    other = _three_channel_onnx(tmp_path / "rgb.onnx")
    before = tree_hashes(run_copy)
    result = invoke(
        "compare",
        "--run",
        str(run_copy),
        "--reference",
        str(run_copy / "onnx" / "dense.onnx"),
        "--candidate",
        str(other),
        "--samples",
        "4",
    )
    line = assert_one_line(result, 1, "input shapes differ")
    assert "1, 8, 8" in line and "3, 8, 8" in line
    assert_unchanged(before, tree_hashes(run_copy))


def test_ratio_with_cosep_is_refused(run_copy: Path) -> None:
    before = tree_hashes(run_copy)
    result = invoke("prune", "--run", str(run_copy), "--ratio", "0.5")
    assert result.exit_code == 2 and "--ratio does not apply" in result.stderr
    assert tree_hashes(run_copy) == before


@pytest.mark.parametrize("command", ["prune", "finetune", "export", "build", "bench", "profile"])
def test_missing_run_directory(tmp_path: Path, command: str) -> None:
    assert_one_line(invoke(command, "--run", str(tmp_path / "missing")), 1, "does not exist")
    assert not (tmp_path / "missing").exists()


def test_corrupt_image_is_named_and_no_run_directory_is_left(tmp_path: Path) -> None:
    from tests.data.test_folders import write_image_tree

    root = write_image_tree(tmp_path / "images", {"cat": 3, "dog": 3})
    bad = root / "train" / "dog" / "9.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    out = tmp_path / "run"
    result = invoke("train", "--run", str(out), "--data", f"imagefolder:{root},size=8", "--epochs", "1")
    assert_one_line(result, 1, str(bad))
    assert not out.exists()


def test_piped_targets_keeps_every_name() -> None:
    from cosep_deploy.targets import list_targets

    result = invoke("targets")
    assert result.exit_code == 0, result.output
    for target in list_targets():
        assert target.name in result.stdout


def test_bench_two_files_outside_a_run(run_copy: Path, tmp_path: Path) -> None:
    import json

    before = tree_hashes(run_copy)
    dense, pruned = (str(run_copy / "onnx" / f"{n}.onnx") for n in ("dense", "pruned"))
    args = ["--batch-sizes", "1", "--iterations", "5", "--min-seconds", "0", "--threads", "1", "--json"]
    result = invoke("bench", "--files", dense, pruned, *args)
    assert result.exit_code == 0, result.output
    speedup = json.loads(result.stdout)["candidate"]["1"]
    assert speedup["median_ms"] > 0 and speedup["baseline_median_ms"] > 0
    assert tree_hashes(run_copy) == before  # nothing written
    other = _three_channel_onnx(tmp_path / "rgb.onnx")
    assert_one_line(invoke("bench", "--files", dense, str(other), *args), 1, "input shapes differ")
    assert invoke("bench", "--files", dense, pruned, "--run", str(run_copy)).exit_code == 2


def test_compare_two_files_outside_a_run(run_copy: Path) -> None:
    dense = str(run_copy / "onnx" / "dense.onnx")
    result = CliRunner().invoke(cli, ["compare", "--reference", dense, "--candidate", dense, "--samples", "8"])
    assert result.exit_code == 0, result.output
    assert "random inputs" in result.stdout


def test_pipeline_method_without_a_budget_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = invoke("pipeline", "--out", str(out), "--method", "l1", "--epochs", "0")
    assert_one_line(result, 1, "l1")
    assert not out.exists()


def test_device_on_a_cpu_target_is_refused(run_copy: Path) -> None:
    before = tree_hashes(run_copy)
    assert_one_line(invoke("bench", "--run", str(run_copy), "--device", "1"), 1, "--device")
    assert_unchanged(before, tree_hashes(run_copy))
