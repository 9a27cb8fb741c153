"""Name resolution: torchvision models, user factories, unknown names, and ModelSpec itself."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from cosep_deploy.errors import ConfigError, ModelError
from cosep_deploy.models import ModelSpec, build_model, count_params, list_models


def test_list_models_ours_first_then_torchvision() -> None:
    names = list_models()
    assert names[:2] == ["resnet20", "resnet56"]
    assert "resnet18" in names and "mobilenet_v3_small" in names
    assert len(names) == len(set(names))
    assert names.index("densenet40") < names.index("alexnet")


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "tv:resnet18"])
def test_torchvision_by_name_with_one_channel(name: str) -> None:
    model = build_model(ModelSpec(name=name, num_classes=10, in_channels=1), seed=0).eval()
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == 1
    with torch.no_grad():
        assert tuple(model(torch.randn(2, 1, 32, 32)).shape) == (2, 10)


def test_torchvision_three_channels_keeps_stem() -> None:
    modules = dict(build_model(ModelSpec(name="tv:mobilenet_v3_small", num_classes=4)).named_modules())
    stem, head = modules["features.0.0"], modules["classifier.3"]
    assert isinstance(stem, nn.Conv2d) and stem.in_channels == 3
    assert isinstance(head, nn.Linear) and head.out_features == 4


def test_unknown_name_suggests() -> None:
    with pytest.raises(ModelError, match=r"Did you mean 'resnet20'"):
        build_model("resnet21")
    with pytest.raises(ModelError, match=r"Did you mean 'resnet18'"):
        build_model("tv:resnet17")


@pytest.fixture
def user_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    package = tmp_path / "my_zoo_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            def tiny(num_classes, in_channels, width=4):
                return nn.Sequential(
                    nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes),
                )

            def fixed():
                return nn.Linear(3, 2)

            def broken(**kwargs):
                raise RuntimeError("out of coffee")

            def not_a_model(**kwargs):
                return 42
            """
        )
    )
    (package / "bad_import.py").write_text("import does_not_exist_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_zoo_pkg"
    for mod in [m for m in sys.modules if m.startswith("my_zoo_pkg")]:
        del sys.modules[mod]


def test_user_factory(user_zoo: str) -> None:
    spec = ModelSpec(name=f"{user_zoo}.nets:tiny", num_classes=5, in_channels=2, kwargs={"width": 6})
    model = build_model(spec, seed=0)
    assert model[0].in_channels == 2 and model[0].out_channels == 6  # type: ignore[index]
    assert tuple(model(torch.randn(3, 2, 8, 8)).shape) == (3, 5)
    assert isinstance(build_model(f"{user_zoo}.nets:fixed"), nn.Linear)


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ("nets:broken", "out of coffee"),
        ("nets:not_a_model", "expected an nn.Module"),
        ("nets:tinny", "Did you mean 'tiny'"),
        ("bad_import:x", "does_not_exist_anywhere"),
        ("missing_module:x", "cannot import module"),
    ],
)
def test_user_factory_failures_are_model_errors(user_zoo: str, target: str, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        build_model(f"{user_zoo}.{target}")


def test_model_spec_json_round_trip() -> None:
    spec = ModelSpec(
        name="mobilenetv2_cifar", num_classes=100, in_channels=1, image_size=8, kwargs={"width_mult": 0.75}
    )
    assert ModelSpec.from_json(spec.to_json()) == spec
    assert spec.input_shape == (1, 8, 8)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ""},
        {"name": "resnet20", "num_classes": 0},
        {"name": "resnet20", "in_channels": True},
        {"name": "resnet20", "kwargs": {"f": object()}},
    ],
)
def test_model_spec_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ModelSpec(**kwargs)  # type: ignore[arg-type]


def test_model_spec_from_json_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="colour"):
        ModelSpec.from_json({"name": "resnet20", "colour": "red"})


def test_model_spec_kwargs_are_copied() -> None:
    extra = {"width_mult": 0.5}
    spec = ModelSpec(name="mobilenetv2_cifar", kwargs=extra)
    extra["width_mult"] = 2.0
    assert spec.kwargs == {"width_mult": 0.5}


def test_count_params() -> None:
    shared = nn.Linear(3, 2)
    assert count_params(shared) == 8
    assert count_params(nn.Sequential(shared, shared)) == 8
    frozen = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    frozen[0].requires_grad_(False)
    assert count_params(frozen, trainable_only=True) == 3
