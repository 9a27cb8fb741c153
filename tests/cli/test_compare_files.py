"""``compare`` of two standalone ONNX files on seeded random inputs: a model with a fixed batch size gets whole
batches of it (ONNX Runtime refused a batch of --samples before: an internal error), a dynamic one any count."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cosep_deploy.cli.main import cli
from cosep_deploy.errors import EXIT_USER
from tests.faults.conftest import assert_one_line

pytest.importorskip("onnx")
from tests.backends.test_tensorrt_engine import conv_onnx


def _compare(reference: Path, candidate: Path, samples: int) -> object:
    args = ["compare", "--reference", str(reference), "--candidate", str(candidate), "--samples", str(samples)]
    return CliRunner().invoke(cli, args)


def test_fixed_batch_models_compare_in_whole_batches(tmp_path: Path) -> None:
    a, b = conv_onnx(tmp_path / "a.onnx", batch=4), conv_onnx(tmp_path / "b.onnx", batch=4)
    result = _compare(a, b, 10)
    assert result.exit_code == 0, (result.output, result.exception)  # type: ignore[attr-defined]
    assert "on 8 random inputs" in result.output  # type: ignore[attr-defined]
    too_few = CliRunner().invoke(
        cli, ["--quiet", "compare", "--reference", str(a), "--candidate", str(b), "--samples", "3"]
    )
    assert_one_line(too_few, EXIT_USER, "batches of exactly 4", "--samples")


def test_dynamic_batch_models_take_any_count(tmp_path: Path) -> None:
    a, b = conv_onnx(tmp_path / "a.onnx"), conv_onnx(tmp_path / "b.onnx")
    result = _compare(a, b, 37)
    assert result.exit_code == 0, (result.output, result.exception)  # type: ignore[attr-defined]
    assert "on 37 random inputs" in result.output  # type: ignore[attr-defined]
