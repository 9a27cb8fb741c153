"""In-package CIFAR models: shapes at every supported input size, published parameter counts, naming."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cosep_deploy.errors import ModelError
from cosep_deploy.models import ModelSpec, build_model, count_params, registered_models

OURS = ["resnet20", "resnet56", "vgg16_cifar", "vgg19_cifar", "mobilenetv2_cifar", "densenet40"]


def test_registry_holds_exactly_our_models_in_order() -> None:
    assert list(registered_models()) == OURS


@pytest.mark.parametrize("name", OURS)
@pytest.mark.parametrize(("size", "in_channels"), [(8, 1), (32, 3)])
def test_forward_shape(name: str, size: int, in_channels: int) -> None:
    spec = ModelSpec(name=name, num_classes=7, in_channels=in_channels, image_size=size)
    model = build_model(spec, seed=0).eval()
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, size, size))
    assert tuple(out.shape) == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["resnet20", "densenet40", "mobilenetv2_cifar"])
def test_forward_16x16(name: str) -> None:
    model = build_model(ModelSpec(name=name, num_classes=3, in_channels=1), seed=0).eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 1, 16, 16)).shape) == (1, 3)


# published parameter counts for 10 classes (He et al. 2016; Liu et al. 2017 network slimming;
# Huang et al. 2017; the common CIFAR MobileNetV2). Option-B shortcuts add 2.8k to the ResNets.
PUBLISHED = {
    "resnet20": 0.27e6,
    "resnet56": 0.85e6,
    "vgg16_cifar": 14.7e6,
    "vgg19_cifar": 20.0e6,
    "densenet40": 1.0e6,
    "mobilenetv2_cifar": 2.24e6,
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_parameter_counts_match_published(name: str) -> None:
    params = count_params(build_model(ModelSpec(name=name, num_classes=10), seed=0))
    assert abs(params - PUBLISHED[name]) / PUBLISHED[name] < 0.03, params


def test_qualified_layer_names() -> None:
    resnet = dict(build_model("resnet20").named_modules())
    assert isinstance(resnet["layer1.0.conv1"], nn.Conv2d)
    assert isinstance(resnet["layer2.0.shortcut.0"], nn.Conv2d)  # option-B projection
    assert isinstance(resnet["layer1.0.shortcut"], nn.Identity)
    assert isinstance(resnet["layer3.2.relu2"], nn.ReLU)
    assert sum(isinstance(m, nn.Conv2d) for m in resnet.values()) == 19 + 2
    dense = dict(build_model("densenet40").named_modules())
    assert isinstance(dense["block3.11.conv"], nn.Conv2d)
    assert dense["block3.11.conv"].in_channels == 304 + 11 * 12  # 16 + 24 layers * 12 before block 3
    assert isinstance(dense["trans2.conv"], nn.Conv2d)
    mbv2 = dict(build_model("mobilenetv2_cifar").named_modules())
    depthwise = mbv2["features.2.depthwise.0"]
    assert isinstance(depthwise, nn.Conv2d) and depthwise.groups == depthwise.in_channels == 96


def test_vgg_depths() -> None:
    def convs(name: str) -> int:
        return sum(isinstance(m, nn.Conv2d) for m in build_model(name).modules())

    assert (convs("vgg16_cifar"), convs("vgg19_cifar")) == (13, 16)


def test_mobilenetv2_width_multiplier() -> None:
    half = build_model(ModelSpec(name="mobilenetv2_cifar", kwargs={"width_mult": 0.5}), seed=0).eval()
    full = build_model(ModelSpec(name="mobilenetv2_cifar"), seed=0)
    assert count_params(half) < 0.7 * count_params(full)
    with torch.no_grad():
        assert tuple(half(torch.randn(1, 3, 8, 8)).shape) == (1, 10)


def test_bad_kwargs_are_model_errors() -> None:
    with pytest.raises(ModelError, match="width_mult"):
        build_model(ModelSpec(name="resnet20", kwargs={"width_mult": 2.0}))


def test_seeded_build_is_reproducible_and_keeps_global_rng() -> None:
    state = torch.get_rng_state()
    a = build_model("resnet20", seed=0).state_dict()
    b = build_model("resnet20", seed=0).state_dict()
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = build_model("resnet20", seed=1).state_dict()
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])
