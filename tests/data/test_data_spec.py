"""Data spec strings: canonical round trips, option resolution, and the errors users see."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosep_deploy.data import DataSpec, load_dataset, parse_data_spec
from cosep_deploy.errors import ConfigError, DataError


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("digits", "digits"),
        ("DIGITS", "digits"),
        ("digits:size=32", "digits:size=32"),
        ("digits:channels=3,size=32", "digits:size=32,channels=3"),
        ("cifar10:/data/c10", "cifar10:/data/c10"),
        ("cifar100:/data/c100,augment=true", "cifar100:/data/c100,augment=1"),
        ("imagefolder:/data/in,size=160", "imagefolder:/data/in,size=160"),
        ("synthetic:10,size=32,channels=3,n=512", "synthetic:10,size=32,channels=3,n=512"),
        ("synthetic", "synthetic:10"),
        ("synthetic:size=16", "synthetic:10,size=16"),
    ],
)
def test_spec_round_trips(text: str, canonical: str) -> None:
    spec = parse_data_spec(text)
    assert str(spec) == canonical
    assert parse_data_spec(str(spec)) == spec
    assert DataSpec.from_json(spec.to_json()) == spec


def test_spec_fields() -> None:
    spec = parse_data_spec("synthetic:7,size=16,channels=1,n=64,seed=3")
    assert (spec.name, spec.num_classes, spec.size, spec.channels, spec.n, spec.seed) == (
        "synthetic",
        7,
        16,
        1,
        64,
        3,
    )
    assert parse_data_spec(None) == parse_data_spec("") == DataSpec(name="digits")
    assert parse_data_spec(spec) is spec


def test_path_may_contain_commas_and_equals() -> None:
    spec = parse_data_spec("cifar10:/data/a,b=c/x,size=16")
    assert spec.path == "/data/a,b=c/x"
    assert spec.size == 16
    assert parse_data_spec(str(spec)) == spec


@pytest.mark.parametrize(
    "text",
    [
        "digits:3",
        "synthetic:x",
        "digits:size=abc",
        "digits:size=0",
        "cifar10",
        "cifar10:",
        "digits:size=8,size=8",
        "imagefolder:,size=3",
        "cifar10:/x,augment=maybe",
        "synthetic:10,path",
    ],
)
def test_malformed_specs_are_config_errors_quoting_the_spec(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_data_spec(text)
    assert repr(text) in str(info.value)


def test_malformed_spec_message_names_valid_forms() -> None:
    with pytest.raises(ConfigError, match=r"valid forms: digits\[:size=N"):
        parse_data_spec("digits:3")


def test_unknown_dataset_suggests_close_name() -> None:
    with pytest.raises(ConfigError, match=r"Did you mean 'cifar10'"):
        parse_data_spec("cifar1:/data")


def test_unknown_option_suggests_close_name() -> None:
    with pytest.raises(ConfigError, match=r"Did you mean 'size'"):
        parse_data_spec("digits:sise=32")


def test_option_not_valid_for_dataset() -> None:
    with pytest.raises(ConfigError, match="n"):
        parse_data_spec("digits:n=5")
    with pytest.raises(ConfigError, match="takes no option 'n'"):
        DataSpec(name="digits", n=5)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_missing_cifar_path_is_a_data_error_naming_the_path(tmp_path: Path, name: str) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_dataset(f"{name}:{missing}")
    message = str(info.value)
    assert str(missing) in message
    assert "never downloads" in message
    assert ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python") in message


def test_missing_imagefolder_path_is_a_data_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "imagenet"
    with pytest.raises(DataError, match=str(missing)):
        load_dataset(f"imagefolder:{missing}")


def test_spec_and_argument_must_agree() -> None:
    with pytest.raises(ConfigError, match="size=16"):
        load_dataset("digits:size=16", image_size=32)
    bundle = load_dataset("digits:size=16", image_size=16)
    assert bundle.input_shape == (1, 16, 16)


def test_bundle_spec_records_resolved_options() -> None:
    bundle = load_dataset("digits", image_size=16, channels=3)
    assert str(bundle.spec) == "digits:size=16,channels=3"
    again = load_dataset(str(bundle.spec))
    assert again.input_shape == bundle.input_shape
