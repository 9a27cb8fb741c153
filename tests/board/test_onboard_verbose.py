"""``cosep_onboard --verbose`` runs every trtexec call with ``--verbose`` (the strict stand-in refuses unknown flags),
and without it none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cosep_deploy.board.bundle import jetson_bundle_from_onnx
from cosep_deploy.targets import get_target
from tests.board.onboard_fixtures import BASH, board_tools, model_pair, run_bundle

pytestmark = pytest.mark.skipif(BASH is None, reason="the bundle's script needs bash")


@pytest.mark.parametrize("verbose", [True, False])
def test_onboard_verbose_reaches_every_trtexec_call(tmp_path: Path, verbose: bool) -> None:
    target = get_target("jetson-orin-nano")
    bundle = jetson_bundle_from_onnx(model_pair(tmp_path / "onnx", ("fp16",)), target, tmp_path / "b", batch_sizes=(1,))
    env = board_tools(tmp_path, target.tensorrt_releases[0], dla_cores=0)
    proc = run_bundle(bundle, env, *(["--verbose"] if verbose else []))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    calls = [json.loads(line) for line in Path(env["STANDIN_LOG"]).read_text().splitlines()]
    runs = [c for c in calls if c != ["--help"]]
    assert runs and all(("--verbose" in c) == verbose for c in runs)
