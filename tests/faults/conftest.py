"""Fixtures of the fault-injection suite: one real run directory (digits, ResNet-20, tiny schedules), copied per
test; a tree hash to prove a failed command changed nothing it did not own; the CLI as a user runs it."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cosep_deploy.cli.main import cli


@pytest.fixture(scope="session")
def fault_base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every stage's artifacts (dense, pruned, fine-tuned, ONNX, CPU engines, bench, layers).

    Trained for 4 epochs and fine-tuned for 2, like ``trained_resnet20``: after one epoch each the pruned
    model's logits are near-ties, and int8's top-1 agreement with fp32 (gated at 95%) fell to 94.1% once the
    knee pruned harder; after 4 + 2 it is 98.4%."""
    from cosep_deploy.bench import BenchConfig
    from cosep_deploy.finetune import TrainConfig
    from cosep_deploy.pipeline import PipelineConfig, RunSpec, run_pipeline
    from cosep_deploy.prune.api import PruneConfig

    out = tmp_path_factory.mktemp("fault_base") / "run"
    cfg = PipelineConfig(
        run=RunSpec(model="resnet20", data="digits"),
        train=TrainConfig(epochs=4),
        prune=PruneConfig(images_per_class=8),
        finetune=TrainConfig(epochs=2, lr=0.02),
        bench=BenchConfig(batch_sizes=(1,), iterations=5, warmup=1, min_seconds=0, warmup_seconds=0),
        threads=1,
    )
    run_pipeline(out, cfg)
    return out


@pytest.fixture
def run_copy(fault_base_run: Path, tmp_path: Path) -> Path:
    """A private copy of the base run, for a test to break."""
    dst = tmp_path / "run copy é"  # a space and non-ASCII: paths users have
    shutil.copytree(fault_base_run, dst)
    return dst


def tree_hashes(root: Path) -> dict[str, str]:
    """Every file under ``root`` by relative path -> sha256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_unchanged(before: dict[str, str], after: dict[str, str], owned: Iterable[str] = ()) -> None:
    """Every file the failed command did not own is byte-identical and still there."""
    prefixes = tuple(owned)
    for path, digest in before.items():
        if prefixes and path.startswith(prefixes):
            continue
        assert after.get(path) == digest, f"{path} changed or vanished"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--quiet", *args])


def assert_one_line(result: Result, code: int, *needles: str) -> str:
    """Exit ``code``, exactly one non-empty line on stderr, no traceback; returns the line."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
