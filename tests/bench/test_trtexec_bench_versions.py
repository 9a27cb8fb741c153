"""trtexec benchmarks: engines matched to trtexec by full version, DLA engines timed with --useDLACore."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from cosep_deploy.bench import BenchConfig
from cosep_deploy.bench.trtexec_bench import bench_trtexec
from cosep_deploy.engines.manifest import EngineManifest, manifest_path_for
from cosep_deploy.errors import EngineLoadError
from tests.bench.test_trtexec_bench import STUB, _engine

RECORD = "import os, sys, json\nopen(os.environ['ARGS_LOG'], 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"


@pytest.fixture
def recording_stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exe = tmp_path / "trtexec"
    exe.write_text(f"#!{sys.executable}\n{RECORD}{STUB}")
    exe.chmod(0o755)
    monkeypatch.setenv("ARGS_LOG", str(tmp_path / "args.jsonl"))
    return exe


def test_another_patch_release_is_refused(recording_stub: Path, tmp_path: Path) -> None:
    """The stub is trtexec 10.13.0: an engine of 10.13.1 does not load there (the old check compared 10.13)."""
    other = _engine(tmp_path, "other", version="10.13.1.2")
    with pytest.raises(EngineLoadError, match=r"built by TensorRT 10\.13\.1\.2"):
        bench_trtexec({"other": other}, "input", (3, 8, 8), BenchConfig(min_seconds=0), executable=recording_stub)
    same = _engine(tmp_path, "dense", version="10.13.0.35")
    bench_trtexec(
        {"dense": same}, "input", (3, 8, 8), BenchConfig(min_seconds=0, batch_sizes=(1,)), executable=recording_stub
    )


def test_dla_engines_are_timed_on_their_dla_core(recording_stub: Path, tmp_path: Path) -> None:
    engines = {}
    for name in ("dense", "pruned"):
        engine = _engine(tmp_path, name)
        manifest = EngineManifest.load(manifest_path_for(engine))
        dataclasses.replace(manifest, dla_core=1).save(manifest_path_for(engine))
        engines[name] = engine
    cfg = BenchConfig(batch_sizes=(1,), iterations=6, min_seconds=0, warmup=1)
    report = bench_trtexec(engines, "input", (3, 8, 8), cfg, rounds=2, executable=recording_stub)
    calls = [json.loads(line) for line in (tmp_path / "args.jsonl").read_text().splitlines()]
    timed = [c for c in calls if any(a.startswith("--loadEngine") for a in c)]
    assert len(timed) == 4 and all("--useDLACore=1" in c for c in timed)
    assert report.settings["dla_core"] == 1
