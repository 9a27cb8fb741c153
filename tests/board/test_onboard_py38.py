"""The on-board package runs on JetPack's own Python (3.8+) with the standard library only, and its readers
understand what the board's tools print."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cosep_deploy.board.onboard.parse import (
    clocks_key,
    parse_jetson_clocks,
    parse_nvpmodel_conf,
    parse_nvpmodel_query,
    parse_tegrastats_line,
    parse_trtexec_log,
    parse_trtexec_version,
)
from cosep_deploy.board.onboard.stats import paired_speedup, summarize_ms
from tests.board.onboard_fixtures import JETSON_CLOCKS, python38

ONBOARD = Path(__file__).resolve().parents[2] / "cosep_deploy" / "board" / "onboard"
FILES = sorted(ONBOARD.glob("*.py"))
# library calls newer than 3.8 that the syntax check cannot see
NEWER_THAN_38 = [
    r"\.removeprefix\(",
    r"\.removesuffix\(",
    r"functools\.cache\b",
    r"\bstrict=",
    r"datetime\.UTC\b",
    r"\bzoneinfo\b",
    r"\btomllib\b",
    r"math\.lcm\(",
    r"\bstr\.isascii\b",
    r"\.is_relative_to\(",
    r"\bmatch \w+:",
]


def test_syntax_is_python_38() -> None:
    assert len(FILES) >= 6
    for path in FILES:
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))


def test_imports_only_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"tensorrt"}  # tensorrt: JetPack's bindings, optional, guarded
    for path in FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [(node.module or "").split(".")[0]]
            else:
                continue
            assert set(names) <= allowed, f"{path.name} imports {names}"


def test_no_library_calls_newer_than_38() -> None:
    for path in FILES:
        text = path.read_text()
        for pattern in NEWER_THAN_38:
            assert not re.search(pattern, text), f"{path.name}: {pattern}"
        # annotations are never evaluated (from __future__ import annotations), everything else runs on 3.8
        assert "from __future__ import annotations" in text or path.name in ("__init__.py", "__main__.py")


def test_runs_under_a_real_python_38(tmp_path: Path) -> None:
    py38 = python38()
    if py38 is None:
        pytest.skip("no Python 3.8 interpreter on this machine (the AST and import checks still ran)")
    pkg = tmp_path / "cosep_onboard"
    pkg.mkdir()
    for path in FILES:
        (pkg / path.name).write_text(path.read_text())
    out = subprocess.run([py38, "-m", "cosep_onboard", "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and "--trtexec" in out.stdout, out.stderr
    code = "import cosep_onboard.parse as p; print(p.parse_trtexec_version('[TensorRT v8502]'))"
    out = subprocess.run([py38, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.stdout.strip() == "(8, 5, 2)", out.stderr


def test_trtexec_banner_and_log() -> None:
    assert parse_trtexec_version("&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec") == (10, 3, 0)
    assert parse_trtexec_version("[TensorRT v8601]") == (8, 6, 1)
    assert parse_trtexec_version("[TensorRT v110401]") == (11, 4, 1)
    log = "[I] Selected Device: Orin\n[I] Compute Capability: 8.7\n[I] SMs: 16\n[I] Device Global Memory: 62841 MiB\n"
    log += "[I] Engine built in 12.5 sec.\n"
    facts = parse_trtexec_log(log)
    assert facts == {
        "device_name": "Orin",
        "compute_capability": "8.7",
        "sm_count": 16,
        "total_memory_mib": 62841,
        "build_seconds": 12.5,
    }


def test_clocks_are_compared_as_frequencies() -> None:
    shown = "\n".join(line[6:-1] for line in JETSON_CLOCKS.splitlines() if line.startswith("echo "))
    clocks = parse_jetson_clocks(shown)
    assert clocks["GPU"] == {"min": 306.0, "max": 1300.5, "current": 1300.5}
    assert clocks["cpu0"]["current"] == 2201.6 and clocks["EMC"]["max"] == 3199.0
    key = clocks_key(clocks)
    assert key == {"gpu_mhz": 1300, "emc_mhz": 3199, "cpu_min_current_mhz": 2202, "locked": True}
    # the same clocks in another text layout compare equal; a lower GPU clock does not
    reordered = "GPU MinFreq=306000000 MaxFreq=1300500000 CurrentFreq=1300500000\n" + shown.replace("GPU Min", "X Min")
    assert clocks_key(parse_jetson_clocks(reordered))["gpu_mhz"] == 1300
    slow = shown.replace("CurrentFreq=1300500000", "CurrentFreq=624750000")
    assert (
        clocks_key(parse_jetson_clocks(slow))["gpu_mhz"] == 625 and not clocks_key(parse_jetson_clocks(slow))["locked"]
    )


def test_nvpmodel_outputs() -> None:
    assert parse_nvpmodel_query("NV Power Mode: MAXN_SUPER\n2\n") == ("MAXN_SUPER", 2)
    conf = "< POWER_MODEL ID=0 NAME=15W >\nCPU_ONLINE CORE_0 1\n< POWER_MODEL ID=2 NAME=MAXN_SUPER >\n"
    assert parse_nvpmodel_conf(conf) == {"15W": 0, "MAXN_SUPER": 2}


@pytest.mark.parametrize(
    ("line", "total", "gpu_mhz", "gpu_temp"),
    [
        (  # AGX Orin, JetPack 5
            "RAM 3209/30536MB (lfb 6528x4MB) CPU [2%@729] EMC_FREQ 0%@3199 GR3D_FREQ 0%@[1300,0] CV0@-256C "
            "GPU@42.125C VDD_GPU_SOC 2776mW/2776mW VDD_CPU_CV 397mW/397mW VIN_SYS_5V0 2522mW/2522mW",
            2522,
            1300,
            42.125,
        ),
        (  # Orin Nano, JetPack 6
            "RAM 2054/7620MB CPU [1%@1510] GR3D_FREQ 12% cpu@48.406C gpu@47.25C VDD_IN 4541mW/4541mW "
            "VDD_CPU_GPU_CV 480mW/480mW VDD_SOC 1399mW/1399mW",
            4541,
            None,
            47.25,
        ),
        (  # AGX Xavier, JetPack 5
            "RAM 1953/31919MB CPU [1%@1190] EMC_FREQ 0% GR3D_FREQ 0%@1377 AUX@31C GPU@32C GPU 0mW/0mW "
            "CPU 155mW/155mW SOC 1244mW/1244mW",
            None,
            1377,
            32.0,
        ),
    ],
)
def test_tegrastats_lines(line: str, total: int | None, gpu_mhz: int | None, gpu_temp: float) -> None:
    sample = parse_tegrastats_line(line)
    assert sample is not None
    assert sample["total_power_mw"] == total and sample["gpu_mhz"] == gpu_mhz
    assert sample["gpu_temperature_c"] == gpu_temp
    assert all(v > -200 for v in sample["temperature_c"].values())  # CV0@-256C: sensor off
    assert parse_tegrastats_line("not tegrastats") is None


def test_paired_speedup_matches_the_host_estimator() -> None:
    import numpy as np

    from cosep_deploy.bench.stats import paired_speedup as host_speedup

    rng = np.random.default_rng(0)
    dense = list(2.0 + 0.1 * rng.random(300))
    pruned = list(1.0 + 0.1 * rng.random(300))
    board, host = paired_speedup(dense, pruned), host_speedup(dense, pruned)
    assert board["speedup"] == pytest.approx(host["speedup"])
    assert board["ci_low"] == pytest.approx(host["ci_low"], rel=0.02)
    assert board["ci_high"] == pytest.approx(host["ci_high"], rel=0.02)
    assert summarize_ms([1.0, 2.0, 3.0])["median"] == 2.0
    with pytest.raises(ValueError):
        paired_speedup([1.0], [1.0, 2.0])
