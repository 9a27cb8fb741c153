"""`compare`: Polygraphy's comparator on real validation images, per-precision tolerances."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cosep_deploy.cli.main import cli


def _compare(run: Path, ref: str, cand: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            "--run",
            str(run),
            "--reference",
            str(run / "onnx" / ref),
            "--candidate",
            str(run / "onnx" / cand),
            "--samples",
            "64",
            *extra,
        ],
    )
    return result.exit_code, result.output


def test_variants_match_their_reference(small_run: Path) -> None:
    code, out = _compare(small_run, "pruned.onnx", "pruned.onnx")
    assert code == 0 and "PASS logits" in out and "100.00%" in out, out
    code, out = _compare(small_run, "pruned.onnx", "pruned.fp16.onnx")
    assert code == 0 and "fp16 tolerances" in out, out
    code, out = _compare(small_run, "pruned.onnx", "pruned.int8.onnx")
    assert code == 0 and "int8 tolerances" in out, out


def test_a_different_model_fails(small_run: Path) -> None:
    code, out = _compare(small_run, "dense.onnx", "pruned.onnx")
    assert code == 1 and out.startswith("error: ") and "FAIL logits" in out, out
