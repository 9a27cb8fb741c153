"""Bad input: one clear `error:` line, exit code 1, and no half-written run directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from cosep_deploy.cli.main import cli


def _invoke(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--quiet", *args])
    return result.exit_code, result.output


def _assert_one_error_line(code: int, output: str, *needles: str) -> None:
    assert code == 1, output
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--model", "resnet21"], ["resnet21", "resnet20"]),  # unknown model, with a suggestion
        (["--data", "cifar10:/nonexistent/cifar"], ["/nonexistent/cifar"]),  # missing dataset path
        (["--data", "digts"], ["digts", "digits"]),  # unknown dataset name
        (["--data", "synthetic:ten"], ["synthetic"]),  # malformed spec
    ],
)
def test_bad_pipeline_input(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    out = tmp_path / "run"
    code, output = _invoke(["pipeline", "--out", str(out), "--epochs", "0", *args])
    _assert_one_error_line(code, output, *needles)
    assert not out.exists()


def test_unwritable_output() -> None:
    # /proc refuses new directories even to root, so this holds on CI machines that run as root
    target = Path("/proc/cosep-deploy-test/run")
    code, output = _invoke(["pipeline", "--out", str(target), "--epochs", "0"])
    _assert_one_error_line(code, output, "cannot create output directory")
    assert not target.exists()


def test_output_path_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, output = _invoke(["train", "--run", str(blocker / "run"), "--epochs", "0"])
    _assert_one_error_line(code, output)
    assert blocker.read_text() == "x"


def test_weights_that_do_not_fit(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    bad = tmp_path / "bad.safetensors"
    save_file({"conv.weight": torch.zeros(3, 3)}, str(bad))
    out = tmp_path / "run"
    code, output = _invoke(["train", "--run", str(out), "--weights", str(bad)])
    _assert_one_error_line(code, output, "bad.safetensors")
    assert not out.exists()


def test_stage_without_its_input(tmp_path: Path) -> None:
    code, output = _invoke(["prune", "--run", str(tmp_path / "empty")])
    _assert_one_error_line(code, output, "cosep-deploy train")
    code, output = _invoke(["bench", "--run", str(tmp_path / "empty")])
    _assert_one_error_line(code, output)
