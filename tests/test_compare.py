"""Output comparison through Polygraphy's comparator, with per-precision tolerances and top-1 agreement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cosep_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner
from cosep_deploy.backends.select import runner_for
from cosep_deploy.backends.torch.runner import TorchRunner
from cosep_deploy.cli.main import cli
from cosep_deploy.compare import DEFAULT_TOLERANCES, compare_files, compare_runners
from cosep_deploy.errors import ConfigError, ExportValidationError
from cosep_deploy.export import onnx_from_model
from cosep_deploy.export.calibration import calibration_set_from_dataset
from cosep_deploy.export.precision import PrecisionConfig, precision_variants_from_onnx
from cosep_deploy.models import ModelSpec, build_model


@pytest.fixture(scope="module")
def images(digits8: Any) -> np.ndarray:
    return torch.stack([digits8.val[i][0] for i in range(128)]).numpy()


@pytest.fixture(scope="module")
def files(
    tmp_path_factory: pytest.TempPathFactory, trained_resnet20: torch.nn.Module, digits8: Any, images: np.ndarray
) -> Path:
    out = tmp_path_factory.mktemp("compare")
    onnx_from_model(trained_resnet20, torch.from_numpy(images[:16]), out / "m.onnx")
    calibration = calibration_set_from_dataset(digits8.train, 16, num_classes=10, source="digits")
    precision_variants_from_onnx(out / "m.onnx", out, PrecisionConfig(), calibration=calibration)
    other = build_model(ModelSpec(name="resnet20", num_classes=10, in_channels=1, image_size=8), seed=7).eval()
    onnx_from_model(other, torch.from_numpy(images[:16]), out / "other.onnx")
    return out


def test_identical_files_pass(files: Path, images: np.ndarray) -> None:
    result = compare_files(files / "m.onnx", files / "m.onnx", images, batch_size=50, check=True)
    logits = result.outputs["logits"]
    assert result.passed and result.precision == "fp32" and result.samples == 128
    assert logits.max_abs == 0.0 and logits.agreement == 1.0 and logits.problems == ()
    assert result.lines() == [
        "PASS logits: max abs 0, max rel 0, mean abs 0, top-1 agreement 100.00%",
    ]


def test_a_different_model_is_flagged(files: Path, images: np.ndarray) -> None:
    result = compare_files(files / "m.onnx", files / "other.onnx", images)
    logits = result.outputs["logits"]
    assert not result.passed and logits.agreement is not None and logits.agreement < 0.5
    assert any("exceeds atol" in p for p in logits.problems) and any("agreement" in p for p in logits.problems)
    with pytest.raises(ExportValidationError, match=r"FAIL logits: .*top-1 agreement"):
        compare_files(files / "m.onnx", files / "other.onnx", images, check=True)


def test_fp16_and_int8_pass_their_own_tolerances(files: Path, images: np.ndarray, digits8: Any) -> None:
    fp16 = compare_files(files / "m.onnx", files / "m.fp16.onnx", images, check=True)
    assert fp16.precision == "fp16" and fp16.tolerance == DEFAULT_TOLERANCES["fp16"]
    assert fp16.outputs["logits"].max_abs <= 1e-2 and fp16.outputs["logits"].max_abs > 0
    int8 = compare_files(files / "m.onnx", files / "m.int8.onnx", digits8.val, samples=200, check=True)
    assert int8.precision == "int8" and int8.samples == 200 and int8.outputs["logits"].agreement >= 0.95  # type: ignore[operator]
    assert int8.to_json()["tolerance"] == {"rtol": None, "atol": None, "min_agreement": 0.95, "atol_scaled": False}
    # int8 logits are not within fp16 tolerances element by element
    strict = compare_files(files / "m.onnx", files / "m.int8.onnx", images, precision="fp16")
    assert not strict.passed and "x output scale" in strict.lines()[0]


def test_overrides_apply(files: Path, images: np.ndarray) -> None:
    tight = compare_files(files / "m.onnx", files / "m.fp16.onnx", images, rtol=1e-7, atol=1e-7)
    assert not tight.passed and tight.tolerance.rtol == 1e-7
    impossible = compare_files(files / "m.onnx", files / "m.onnx", images, min_agreement=1.01)
    assert not impossible.passed
    with pytest.raises(ConfigError, match="unknown precision"):
        compare_files(files / "m.onnx", files / "m.onnx", images, precision="fp8")


def test_runners_of_other_backends_and_mismatched_outputs(
    files: Path, images: np.ndarray, trained_resnet20: torch.nn.Module
) -> None:
    feeds = [{"input": images[:64]}, {"input": images[64:]}]
    five_classes = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5))
    with OnnxRuntimeRunner(files / "m.onnx") as ref:
        with TorchRunner(five_classes) as narrow:
            result = compare_runners(ref, narrow, feeds)
        assert not result.passed and "shapes differ" in result.lines()[0]
        with TorchRunner(trained_resnet20, output_names=("scores",)) as renamed:
            result = compare_runners(ref, renamed, feeds)
        assert not result.passed and "missing from the candidate" in result.lines()[0]
        with pytest.raises(ConfigError, match="no input feeds"):
            compare_runners(ref, ref, [])


def test_runner_for_picks_by_suffix(files: Path) -> None:
    runner = runner_for(files / "m.int8.onnx")
    assert isinstance(runner, OnnxRuntimeRunner) and runner.precision == "int8"
    assert type(runner_for(files / "absent.engine")).__name__ == "TensorRTRunner"  # imported lazily, not run
    with pytest.raises(ConfigError, match=r"\.onnx, \.engine or \.plan"):
        runner_for(files / "m.pt")


def _cli_compare(run: Path, ref: str, cand: str) -> tuple[int, str]:
    args = ["compare", "--run", str(run), "--reference", str(run / "onnx" / ref), "--candidate"]
    result = CliRunner().invoke(cli, [*args, str(run / "onnx" / cand), "--samples", "64"])
    return result.exit_code, result.output


def test_cli_compare_end_to_end(small_run: Path) -> None:
    code, out = _cli_compare(small_run, "pruned.onnx", "pruned.onnx")
    assert code == 0 and "PASS logits" in out and "100.00%" in out, out
    code, out = _cli_compare(small_run, "pruned.onnx", "pruned.fp16.onnx")
    assert code == 0 and "fp16 tolerances" in out, out
    code, out = _cli_compare(small_run, "pruned.onnx", "pruned.int8.onnx")
    assert code == 0 and "int8 tolerances" in out, out
    code, out = _cli_compare(small_run, "dense.onnx", "pruned.onnx")
    assert code == 1 and out.startswith("error: ") and "FAIL logits" in out, out


def test_cli_compare_onnx_against_the_torch_model_it_came_from(small_run: Path) -> None:
    """The framework-vs-engine parity check: the fine-tuned model folder, run in PyTorch, against its fp32 ONNX."""
    args = ["compare", "--run", str(small_run), "--reference", str(small_run / "onnx" / "pruned.onnx")]
    args += ["--candidate", str(small_run / "finetuned"), "--candidate-backend", "torch", "--samples", "64"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "PASS logits" in result.output, result.output


def _logit_model(scale: float, shift: float) -> torch.nn.Module:
    """Ten logits spread over [-scale, scale], logit 5 at ``shift`` (0 in the reference)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 10))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.linspace(-scale, scale, 10))
        model[1].bias[5] = shift
    return model.eval()


@pytest.mark.parametrize(
    ("scale", "shift", "passes"),
    [
        (20.0, 0.015, True),  # 0.075% of the range on a logit near 0: fp16's own error (demo: 0.016 at 19.5)
        (20.0, 0.5, False),  # 2.5% of the range: more than fp16 explains
        (0.5, 0.015, False),  # outputs within [-1, 1] keep the absolute 1e-2
    ],
)
def test_fp16_atol_follows_the_output_scale(scale: float, shift: float, passes: bool) -> None:
    feeds = [{"input": np.ones((4, 1, 2, 2), np.float32)}]
    with TorchRunner(_logit_model(scale, 0.0)) as ref, TorchRunner(_logit_model(scale, shift)) as cand:
        result = compare_runners(ref, cand, feeds, precision="fp16")
    assert result.passed is passes, result.lines()
    if not passes:
        assert f"x output scale {max(1.0, scale):.3g}" in result.lines()[0]


def _two_top_logits(first: float, second: float) -> torch.nn.Module:
    """Logits 0 everywhere except class 3 = ``first`` and class 7 = ``second`` (the same for every input)."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 10))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.zero_()
        model[1].bias[3], model[1].bias[7] = first, second
    return model.eval()


@pytest.mark.parametrize(
    ("precision", "ref", "cand", "passes", "excused"),
    [
        # a near-tie (margin 0.004 < 2 x atol) flipped by errors within fp16's tolerance: excused
        ("fp16", (1.004, 1.0), (1.0, 1.004), True, 4),
        # the same flip under fp32's atol 1e-4 is a decided row turned: it fails (and the errors exceed atol)
        ("fp32", (1.004, 1.0), (1.0, 1.004), False, 0),
        # int8 checks no atol, so no flip is excused however close the reference was
        ("int8", (1.004, 1.0), (1.0, 1.004), False, 0),
        # a decided reference (margin 0.5) flipped: never excused
        ("fp16", (1.5, 1.0), (1.0, 1.5), False, 0),
    ],
)
def test_argmax_flips_on_near_ties_are_excused_only_within_atol(
    precision: str, ref: tuple[float, float], cand: tuple[float, float], passes: bool, excused: int
) -> None:
    feeds = [{"input": np.ones((4, 1, 2, 2), np.float32)}]
    with TorchRunner(_two_top_logits(*ref)) as r, TorchRunner(_two_top_logits(*cand)) as c:
        result = compare_runners(r, c, feeds, precision=precision)
    logits = next(iter(result.outputs.values()))
    assert result.passed is passes, result.lines()
    assert logits.near_ties == excused
    assert logits.agreement == (1.0 if passes else 0.0)
    if excused:
        assert "(4 flips within 2 x atol of a tie excused)" in result.lines()[0]
    else:
        assert "agreement 0.00% is below" in result.lines()[0]
