"""Jetson detection, L4T/JetPack parsing, board-vs-target check and power state, on real files in a temp root.

The files hold what boards print (first lines of ``/etc/nv_tegra_release``, device-tree model strings with
their trailing NUL). ``power_state`` runs real executables: small shell scripts standing in for ``nvpmodel``
and ``jetson_clocks`` in a temp PATH, printing what those tools print. The on-board build itself (TensorRT,
a GPU) is marked ``jetson`` and skips here.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from cosep_deploy.board.jetson import (
    JETPACK_FOR_L4T,
    check_board_matches,
    detect_jetson,
    parse_l4t_release,
    parse_nvpmodel,
    power_state,
    target_for_model,
)
from cosep_deploy.errors import ConfigError, TargetMismatchError
from cosep_deploy.target_files import load_target
from cosep_deploy.targets import get_target, list_targets

ORIN_NANO_RELEASE = (
    "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
    "DATE: Wed Jan  8 01:49:37 UTC 2025\n"
    "# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
)


def _board(root: Path, release: str | None, model: bytes | None) -> Path:
    if release is not None:
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "etc" / "nv_tegra_release").write_text(release)
    if model is not None:
        (root / "proc" / "device-tree").mkdir(parents=True, exist_ok=True)
        (root / "proc" / "device-tree" / "model").write_bytes(model)
    return root


@pytest.mark.parametrize(
    ("line", "version", "jetpack"),
    [
        (ORIN_NANO_RELEASE, "36.4.3", "6.2"),
        ("# R36 (release), REVISION: 4.4, GCID: 41062509, BOARD: generic, EABI: aarch64", "36.4.4", "6.2.1"),
        ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64", "35.4.1", "5.1.2"),
        ("# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64", "36.3.0", "6.0"),
        ("# R38 (release), REVISION: 2.0, GCID: 40000000, BOARD: generic, EABI: aarch64", "38.2.0", "7.0"),
        ("# R36 (release), REVISION: 9.9, GCID: 1, BOARD: generic, EABI: aarch64", "36.9.9", None),  # not in table
        ("# R32 (release), REVISION: 7", "32.7.0", None),
    ],
)
def test_l4t_release_and_jetpack(line: str, version: str, jetpack: str | None) -> None:
    release = parse_l4t_release(line)
    assert (release.version, release.jetpack) == (version, jetpack)


def test_jetpack_table_is_consistent() -> None:
    for l4t, jetpack in JETPACK_FOR_L4T.items():
        major = int(l4t.split(".")[0])
        assert jetpack[0] == {35: "5", 36: "6", 38: "7"}[major], (l4t, jetpack)


@pytest.mark.parametrize("text", ["", "R36 4.3", "# R36 (beta) REVISION 4.3", "TARGET_USERSPACE_LIB_DIR=nvidia"])
def test_unreadable_release_line_is_a_clear_error(text: str) -> None:
    with pytest.raises(ConfigError, match="REVISION"):
        parse_l4t_release(text)


@pytest.mark.parametrize(
    ("model", "target"),
    [
        ("NVIDIA Jetson AGX Orin Developer Kit", "jetson-agx-orin"),
        ("NVIDIA Jetson Orin NX Engineering Reference Developer Kit", "jetson-orin-nx"),
        ("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", "jetson-orin-nano"),
        ("NVIDIA Jetson Orin Nano Developer Kit", "jetson-orin-nano"),
        ("NVIDIA Jetson Xavier NX Developer Kit", "jetson-xavier-nx"),
        ("NVIDIA Jetson AGX Xavier Developer Kit", "jetson-agx-xavier"),
        ("Jetson-AGX", "jetson-agx-xavier"),
        ("NVIDIA Jetson AGX Thor Developer Kit", "jetson-thor"),
        ("NVIDIA IGX Orin Development Kit", None),
        ("Acme Robotics carrier rev B", None),
    ],
)
def test_model_strings_name_the_shipped_profiles(model: str, target: str | None) -> None:
    assert target_for_model(model) == target


def test_every_shipped_jetson_profile_can_be_identified() -> None:
    for profile in list_targets():
        if profile.kind == "jetson":
            words = " ".join(w.capitalize() for w in profile.name.split("-")[1:])
            assert target_for_model(f"NVIDIA Jetson {words} Developer Kit") == profile.name


def test_detect_reads_the_files_under_root(tmp_path: Path) -> None:
    assert detect_jetson(tmp_path) is None  # no nv_tegra_release: not a Jetson
    root = _board(tmp_path, ORIN_NANO_RELEASE, b"NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\x00")
    info = detect_jetson(root)
    assert info is not None
    assert info.model == "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"  # NUL dropped
    assert info.l4t is not None and info.l4t.version == "36.4.3" and info.target == "jetson-orin-nano"
    assert info.release_line.startswith("# R36 (release), REVISION: 4.3")
    record = info.to_json()
    assert record["l4t"] == "36.4.3" and record["jetpack"] == "6.2" and record["target"] == "jetson-orin-nano"
    json.dumps(record)  # goes into build.json as is


def test_detect_without_model_or_with_an_odd_release_line(tmp_path: Path) -> None:
    info = detect_jetson(_board(tmp_path, "something else entirely\n", None))
    assert info is not None and info.l4t is None and info.model is None and info.target is None
    assert info.release_line == "something else entirely"


def test_building_for_another_board_is_refused(tmp_path: Path) -> None:
    root = _board(tmp_path, ORIN_NANO_RELEASE, b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    info = detect_jetson(root)
    assert info is not None
    with pytest.raises(TargetMismatchError, match="--target jetson-orin-nano") as err:
        check_board_matches(get_target("jetson-agx-orin"), info)
    assert "--allow-other-device" in str(err.value) and "Orin Nano" in str(err.value)
    messages: list[str] = []
    check_board_matches(get_target("jetson-agx-orin"), info, allow_other_device=True, progress=messages.append)
    assert len(messages) == 1 and "building anyway" in messages[0]
    messages.clear()
    check_board_matches(get_target("jetson-orin-nano"), info, progress=messages.append)
    assert messages == []


def test_unknown_board_or_custom_profile_builds_with_a_message(tmp_path: Path) -> None:
    carrier = detect_jetson(_board(tmp_path / "a", ORIN_NANO_RELEASE, b"Acme Robotics carrier rev B\x00"))
    assert carrier is not None
    messages: list[str] = []
    check_board_matches(get_target("jetson-agx-orin"), carrier, progress=messages.append)
    assert "could not tell which Jetson" in messages[0]

    custom_file = tmp_path / "my-orin.toml"
    custom_file.write_text(get_target("jetson-orin-nano").to_toml().replace('"jetson-orin-nano"', '"my-orin"'))
    custom = load_target(custom_file)
    nano = detect_jetson(_board(tmp_path / "b", ORIN_NANO_RELEASE, b"NVIDIA Jetson Orin Nano Developer Kit\x00"))
    assert nano is not None
    messages.clear()
    check_board_matches(custom, nano, progress=messages.append)
    assert "custom profile my-orin" in messages[0]


@pytest.mark.parametrize(
    ("text", "mode", "ident"),
    [
        ("NV Power Mode: MAXN\n0\n", "MAXN", 0),
        ("NVPM WARN: power mode is not set!\nNV Power Mode: 15W\n2\n", "15W", 2),
        ("NV Power Mode: MAXN_SUPER", "MAXN_SUPER", None),
        ("nvpmodel: not supported\n", None, None),
    ],
)
def test_parse_nvpmodel(text: str, mode: str | None, ident: int | None) -> None:
    assert parse_nvpmodel(text) == (mode, ident)


def _tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def test_power_state_records_both_tools(tmp_path: Path) -> None:
    _tool(tmp_path, "nvpmodel", '[ "$1" = "-q" ] || exit 3\nprintf "NV Power Mode: MAXN\\n0\\n"')
    _tool(
        tmp_path,
        "jetson_clocks",
        '[ "$1" = "--show" ] || exit 3\necho "SOC family:tegra234  Machine:NVIDIA Jetson AGX Orin Developer Kit"\n'
        'echo "GPU MinFreq=306000000 MaxFreq=1300500000 CurrentFreq=1300500000"',
    )
    state = power_state(path=str(tmp_path))
    assert (state.nvpmodel_mode, state.nvpmodel_id) == ("MAXN", 0)
    assert state.nvpmodel == "NV Power Mode: MAXN\n0"
    assert state.clocks is not None and "CurrentFreq=1300500000" in state.clocks
    assert state.reasons == {}
    assert json.loads(json.dumps(state.to_json()))["nvpmodel_mode"] == "MAXN"


def test_power_state_says_why_something_is_missing(tmp_path: Path) -> None:
    state = power_state(path=str(tmp_path))  # an empty folder: neither tool
    assert state.nvpmodel is None and state.clocks is None
    assert "not found" in state.reasons["nvpmodel"] and "not found" in state.reasons["jetson_clocks"]

    _tool(tmp_path, "nvpmodel", 'printf "NV Power Mode: 25W\\n1\\n"')
    _tool(tmp_path, "jetson_clocks", 'echo "jetson_clocks: this script needs root privileges" >&2\nexit 1')
    state = power_state(path=str(tmp_path))
    assert (state.nvpmodel_mode, state.nvpmodel_id, state.clocks) == ("25W", 1, None)
    assert "exited with 1" in state.reasons["jetson_clocks"] and "root" in state.reasons["jetson_clocks"]
    assert "nvpmodel" not in state.reasons


@pytest.mark.jetson
@pytest.mark.gpu
@pytest.mark.slow
def test_on_board_build_records_the_board_and_benchmarks(small_run: Path, tmp_path: Path) -> None:
    """On a Jetson with TensorRT: engines, power state and one bench JSON per precision (GPU; skipped here)."""
    from cosep_deploy.pipeline.build import build_stage

    info = detect_jetson()
    if info is None or info.target is None:
        pytest.skip("not a Jetson this code can identify")
    run = tmp_path / "run"
    # the shared run stays as it was; the copy keeps the chain build checks (dense -> plan -> ONNX)
    shutil.copytree(small_run, run, ignore=shutil.ignore_patterns("engines"))
    made = build_stage(run, target=info.target, precisions=("fp32",), cache_dir=tmp_path / "cache")
    out = run / "engines" / info.target
    assert made["board"]["l4t"] == info.to_json()["l4t"] and "power" in made["board"]
    assert (out / "dense.engine").is_file() and (out / made["bench"]["fp32"]).is_file()
    assert json.loads((out / "build.json").read_text())["board"]["model"] == info.model
    again = build_stage(run, target=info.target, precisions=("fp32",), cache_dir=tmp_path / "cache")
    assert all(entry["hit"] for entry in again["cache"].values())


def test_power_state_clocks_compared_as_frequencies(tmp_path: Path) -> None:
    """Two jetson_clocks texts at the same frequencies (other governor, idle states) compare equal; a lower GPU
    clock does not (the old comparison used the raw text, so no two runs were ever comparable)."""
    from cosep_deploy.bench.compat import check_reports_comparable
    from cosep_deploy.errors import BenchError

    base = "GPU MinFreq=306000000 MaxFreq=1300500000 CurrentFreq=1300500000\n"
    base += "cpu0: Online=1 Governor=%s MinFreq=729600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=%d\n"
    states = {}
    for label, text in (("a", base % ("schedutil", 0)), ("b", base % ("performance", 1))):
        (tmp_path / label).mkdir()
        _tool(tmp_path / label, "nvpmodel", 'echo "NV Power Mode: MAXN"; echo 0')
        _tool(tmp_path / label, "jetson_clocks", f"cat <<'X'\n{text}X")
        states[label] = power_state(path=str(tmp_path / label))
    assert states["a"].clocks != states["b"].clocks and states["a"].clocks_key == states["b"].clocks_key
    assert states["a"].clocks_key == {"gpu_mhz": 1300, "cpu_min_current_mhz": 2202, "locked": True}

    def report(state: object) -> dict[str, object]:
        return {"environment": {"jetson": {"board": {}, "power": state.to_json()}}}  # type: ignore[attr-defined]

    check_reports_comparable({"a": report(states["a"]), "b": report(states["b"])})
    (tmp_path / "c").mkdir()
    slow_text = base.replace("CurrentFreq=1300500000", "CurrentFreq=624750000") % ("schedutil", 0)
    _tool(tmp_path / "c", "nvpmodel", 'echo "NV Power Mode: MAXN"; echo 0')
    _tool(tmp_path / "c", "jetson_clocks", f"cat <<'X'\n{slow_text}X")
    slow = power_state(path=str(tmp_path / "c"))
    with pytest.raises(BenchError, match="gpu_mhz"):
        check_reports_comparable({"a": report(states["a"]), "c": report(slow)})
