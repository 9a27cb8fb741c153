"""`build --cache-dir/--no-cache/--allow-other-device`: parsed, and carried to the build stage.

TensorRT cannot run here, so the options are followed to where the stage acts on them before any engine is
built: the cache directory is checked first (a path that cannot hold a cache is refused, whether it came
from --cache-dir or $COSEP_DEPLOY_CACHE), and --no-cache skips that check and goes on to TensorRT.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cosep_deploy.cli.main import cli
from cosep_deploy.deps import is_available
from cosep_deploy.engines.manifest import CACHE_ENV_VAR


@pytest.fixture
def run_copy(small_run: Path, tmp_path: Path) -> Path:
    """A copy of the shared run without its engines: builds here leave the shared run as it was."""
    shutil.copytree(small_run, tmp_path / "run", ignore=shutil.ignore_patterns("engines"))
    return tmp_path / "run"


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--quiet", *args], env=env)
    return result.exit_code, result.output


def test_options_are_documented() -> None:
    code, output = _invoke("build", "--help")
    assert code == 0
    for flag in ("--cache-dir", "--no-cache", "--allow-other-device", "COSEP_DEPLOY_CACHE"):
        assert flag in output


def test_cache_dir_and_no_cache_contradict(tmp_path: Path) -> None:
    code, output = _invoke("build", "--run", str(tmp_path), "--cache-dir", str(tmp_path / "c"), "--no-cache")
    assert code == 2 and "contradict" in output


def test_cache_dir_that_is_a_file_is_refused_by_click(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    code, output = _invoke("build", "--run", str(tmp_path), "--cache-dir", str(tmp_path / "file"))
    assert code == 2 and "file" in output


@pytest.mark.skipif(is_available("tensorrt"), reason="TensorRT is installed here: the build would go ahead")
def test_cache_options_reach_the_stage(run_copy: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    bad = str(tmp_path / "file" / "cache")  # cannot be created: its parent is a file
    engines = run_copy / "engines" / "dgpu-ampere-plus"
    from cosep_deploy.deps import is_available

    if not is_available("tensorrt"):  # a missing TensorRT is said first (exit 3), not the cache folder
        code, output = _invoke("build", "--run", str(run_copy), "--target", "dgpu-ampere-plus", "--cache-dir", bad)
        assert code == 3 and "engine cache" not in output and "pip install" in output, output
        assert not engines.exists()
        return

    code, output = _invoke("build", "--run", str(run_copy), "--target", "dgpu-ampere-plus", "--cache-dir", bad)
    assert code == 1 and output.startswith("error: engine cache") and "not a directory" in output, output
    assert not engines.exists()

    code, output = _invoke("build", "--run", str(run_copy), "--target", "dgpu-ampere-plus", env={CACHE_ENV_VAR: bad})
    assert code == 1 and output.startswith("error: engine cache"), output  # the default comes from the env

    args = ("build", "--run", str(run_copy), "--target", "dgpu-ampere-plus", "--no-cache")
    code, output = _invoke(*args, env={CACHE_ENV_VAR: bad})
    assert code == 3 and "engine cache" not in output and "pip install" in output, output  # on to TensorRT
    assert not engines.exists()


def test_cpu_targets_do_not_touch_the_cache(run_copy: Path, tmp_path: Path) -> None:
    from cosep_deploy.pipeline.build import build_stage

    (tmp_path / "file").write_text("x")
    made = build_stage(run_copy, target="cpu-onnxruntime", precisions=("fp32",), cache_dir=tmp_path / "file" / "c")
    assert set(made["engines"]) == {"dense", "pruned"} and "cache" not in made


def test_jetson_target_off_the_board_writes_bundles_without_the_cache(run_copy: Path, tmp_path: Path) -> None:
    from cosep_deploy.board.jetson import detect_jetson
    from cosep_deploy.pipeline.build import build_stage

    if detect_jetson() is not None:
        pytest.skip("this is a Jetson: the engines would be built here")
    (tmp_path / "file").write_text("x")
    unusable = tmp_path / "file" / "cache"  # never looked at: no engine is built off the board
    made = build_stage(run_copy, target="jetson-agx-orin", precisions=("fp32",), cache_dir=unusable)
    assert set(made["bundles"]) == {"dense", "pruned"} and "board" not in made and "cache" not in made
