"""Target profiles: every shipped TOML loads and is exercised; user files are validated field by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosep_deploy.errors import ConfigError
from cosep_deploy.target_files import load_target
from cosep_deploy.target_profile import version_in_range
from cosep_deploy.targets import TARGETS_DIR, get_target, list_targets

SHIPPED = [
    "cpu-onnxruntime",
    "dgpu-ampere-plus",
    "jetson-agx-orin",
    "jetson-agx-xavier",
    "jetson-orin-nano",
    "jetson-orin-nx",
    "jetson-thor",
    "jetson-xavier-nx",
]

# facts from shared/reference/tensorrt-jetson.md: compute capability, DLA cores (None: query at run time)
FACTS = {
    "jetson-agx-orin": ("8.7", 2),
    "jetson-orin-nx": ("8.7", None),
    "jetson-orin-nano": ("8.7", 0),
    "jetson-agx-xavier": ("7.2", 2),
    "jetson-xavier-nx": ("7.2", 2),
    "jetson-thor": ("11.0", 0),
    "dgpu-ampere-plus": ("8.0", 0),
    "cpu-onnxruntime": (None, 0),
}

VALID = """
name = "my-board"
description = "a test board"
kind = "jetson"
backend = "tensorrt"
precisions = ["fp16", "int8"]
default_precision = "fp16"
compute_capability = "8.7"
jetpack = "6.2"
tensorrt = ">=10.3,<11"
workspace_mib = 512
round_to = 16

[batch]
min = 1
opt = 4
max = 8

[dla]
use_dla = true
dla_cores = 2
"""


def test_shipped_targets_are_exactly_the_expected_set() -> None:
    assert [t.name for t in list_targets()] == SHIPPED
    assert sorted(p.stem for p in TARGETS_DIR.glob("*.toml")) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_target_loads_and_round_trips(name: str, tmp_path: Path) -> None:
    target = get_target(name)
    assert target.name == name
    capability, cores = FACTS[name]
    assert target.compute_capability == capability
    assert target.dla.dla_cores == cores
    assert target.default_precision in target.precisions
    for precision in target.precisions:
        assert target.round_to_for(precision) >= 1
    assert 1 <= target.batch.min <= target.batch.opt <= target.batch.max
    if target.backend == "tensorrt":
        assert target.round_to_for("fp16") == 8 and target.round_to_for("int8") == 32
        assert target.workspace_mib > 0 and target.tensorrt
    else:
        assert target.kind == "cpu" and not target.supports_tensorrt("10.3.0")
    if target.kind == "jetson":
        assert target.jetpack
    path = tmp_path / f"{name}.toml"
    path.write_text(target.to_toml())
    assert load_target(path) == target


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("jetson-agx-orin", "10.3.0.30", True),  # JetPack 6.2
        ("jetson-agx-orin", "11.4.1", True),  # JetPack 7.2.2+
        ("jetson-orin-nano", "11.4.1", False),  # 7.2.2+ is AGX Orin and Thor only
        ("jetson-agx-xavier", "8.5.2.2", True),  # JetPack 5.1
        ("jetson-agx-xavier", "8.6.2", False),
        ("jetson-thor", "10.13.3", True),
        ("jetson-thor", "10.3.0", False),
    ],
)
def test_tensorrt_ranges_follow_jetpack(name: str, version: str, expected: bool) -> None:
    assert get_target(name).supports_tensorrt(version) is expected


def test_version_in_range_pads_and_compares_numerically() -> None:
    assert version_in_range("10.3", ">=10.3.0,<10.4")
    assert version_in_range("10.13.0.35", ">10.3")  # 13 > 3 numerically, not as text
    assert not version_in_range("10.3.0", "!=10.3")
    with pytest.raises(ConfigError, match="'~10'"):
        version_in_range("10.3", "~10")


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'jetson-agx-orin'") as info:
        get_target("jetson-agx-orn")
    assert "jetson-thor" in str(info.value)  # lists the known names


def test_user_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "my-board.toml"
    path.write_text(VALID)
    target = get_target(str(path))
    assert target.round_to == {"fp16": 16, "int8": 16}  # an integer applies to every precision
    assert target.dla.use_dla and target.dla.gpu_fallback  # gpu_fallback defaults to true
    assert target.supports_tensorrt("10.3.0") and not target.supports_tensorrt("11.0")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("workspace_mib = 512", 'workspace_mib = "512"', "workspace_mib"),
        ("workspace_mib = 512", "workspace_mib = true", "workspace_mib"),  # a bool is not an integer here
        ('kind = "jetson"', 'kind = "phone"', "kind"),
        ('precisions = ["fp16", "int8"]', 'precisions = ["fp16", "bf16"]', "precisions"),
        ('default_precision = "fp16"', 'default_precision = "fp32"', "default_precision"),
        ('compute_capability = "8.7"', 'compute_capability = "sm87"', "compute_capability"),
        ('tensorrt = ">=10.3,<11"', 'tensorrt = "10.3+"', "tensorrt"),
        ("round_to = 16", "round_to = {fp16 = 8}", "round_to.int8"),
        ("round_to = 16", "round_to = {fp16 = 8, int8 = 0}", "round_to.int8"),
        ("opt = 4", "opt = 16", "batch"),
        ("dla_cores = 2", "dla_cores = -1", "dla.dla_cores"),
        ("dla_cores = 2", "dla_cores = 0", "dla.use_dla"),
        ('name = "my-board"', 'name = "My Board"', "name"),
        ('jetpack = "6.2"', "", "jetpack"),
        ('backend = "tensorrt"', 'backend = "onnxruntime"', "backend"),
    ],
)
def test_bad_field_names_file_and_field(tmp_path: Path, old: str, new: str, field: str) -> None:
    assert old in VALID
    path = tmp_path / "board.toml"
    path.write_text(VALID.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_target(path)
    assert str(path) in str(info.value)
    assert f"'{field}'" in str(info.value)


def test_unknown_field_gets_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "board.toml"
    path.write_text(VALID.replace("workspace_mib", "workspace_mb"))
    with pytest.raises(ConfigError, match="Did you mean 'workspace_mib'"):
        load_target(path)
    path.write_text(VALID.replace("dla_cores", "cores"))
    with pytest.raises(ConfigError, match=r"dla\.cores"):
        load_target(path)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("name = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_target(path)
    with pytest.raises(ConfigError, match="not found"):
        load_target(tmp_path / "absent.toml")


def test_folder_name_must_match_file_name(tmp_path: Path) -> None:
    (tmp_path / "other-name.toml").write_text(VALID)
    with pytest.raises(ConfigError, match="must equal the file name"):
        list_targets(tmp_path)


def test_round_to_for_unknown_precision() -> None:
    with pytest.raises(ConfigError, match="unknown precision"):
        get_target("cpu-onnxruntime").round_to_for("fp16")
