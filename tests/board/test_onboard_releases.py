"""The bundle of every Jetson target, run end to end against the strict stand-in trtexec of every TensorRT
release in the target's range: dense and pruned built and timed interleaved, every manifest filled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cosep_deploy.board.bundle import jetson_bundle_from_onnx
from cosep_deploy.engines.manifest import EngineManifest, verify_engine_file
from cosep_deploy.targets import get_target, list_targets
from tests.board.onboard_fixtures import BASH, board_tools, model_pair, run_bundle

pytestmark = pytest.mark.skipif(BASH is None, reason="the bundle's script needs bash")

CASES = [(t.name, r) for t in list_targets() if t.kind == "jetson" for r in t.tensorrt_releases]


def test_every_release_of_every_jetson_target_is_covered() -> None:
    releases = {r for _, r in CASES}
    assert {"8.5.2", "10.13"} <= releases and any(r.startswith("8.6") for r in releases)
    assert any(r.startswith("10.3") for r in releases) and any(r.startswith("11.") for r in releases)


@pytest.mark.parametrize(("target_name", "release"), CASES)
def test_bundle_runs_on_release(target_name: str, release: str, tmp_path: Path) -> None:
    target = get_target(target_name)
    models = model_pair(tmp_path / "onnx", ("fp16",))
    bundle = jetson_bundle_from_onnx(models, target, tmp_path / "bundle", batch_sizes=(1, 4))
    env = board_tools(tmp_path, release, dla_cores=target.dla.dla_cores or 0)
    proc = run_bundle(bundle, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((bundle / "results" / "board.json").read_text())
    assert result["tensorrt_version"] == ".".join(([*release.split("."), "0", "0"])[:3])
    assert result["failed"] == [] and result["errors"] == []
    assert [(p["precision"], p["batch"]) for p in result["pairs"]] == [("fp16", 1), ("fp16", 4)]
    for pair in result["pairs"]:
        s = pair["speedup"]
        assert s["speedup"] > 1.5 and s["ci_low"] <= s["speedup"] <= s["ci_high"]  # 64 vs 16 channels
        assert len(pair["round_medians_ms"]) == 2
    plan = json.loads((bundle / "bundle.json").read_text())
    for engine in plan["engines"]:
        manifest_file = bundle / "engines" / f"{engine['id']}.manifest.json"
        raw = json.loads(manifest_file.read_text())
        assert all(raw[k] not in (None, "") for k in plan["fill_on_board"]), raw
        manifest = EngineManifest.load(manifest_file)
        verify_engine_file(manifest, bundle / engine["engine"])
        assert manifest.device_name == "Orin" and manifest.compute_capability == "8.7"
        assert (bundle / f"results/{engine['id']}.profile.json").is_file()
        assert (bundle / f"results/{engine['id']}.layers.json").is_file()
    logs = "".join(p.read_text() for p in (bundle / "results" / "logs").glob("*.log"))
    assert "[W]" not in logs and "Unknown option" not in logs  # no deprecated or missing flags used
    power = result["board"]["power"]
    assert power["mode"] == "MAXN" and power["at_max"] == ("MAXN" in target.power.max_modes)
    assert power["max_mode_id"] == (0 if "MAXN" in target.power.max_modes else None)
    assert result["board"]["clocks_key"]["gpu_mhz"] == 1300 and result["clocks_changed"] is False
    assert result["tegrastats"]["summary"]["samples_during_bench"] > 0
    assert result["tegrastats"]["summary"]["gpu_mhz"]["max"] == 1300
    calls = [json.loads(line) for line in Path(env["STANDIN_LOG"]).read_text().splitlines()]
    bench = [c for c in calls if any(a.startswith("--exportTimes") for a in c)]
    order = [next(a for a in c if a.startswith("--loadEngine")).split("/")[-1].split(".")[0] for c in bench]
    assert order[:4] == ["dense", "pruned", "pruned", "dense"]  # interleaved rounds
