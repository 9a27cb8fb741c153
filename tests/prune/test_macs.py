"""MACs against closed forms and torchvision's published per-model GFLOPS."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cosep_deploy.prune.macs import count_macs_params


def test_conv_and_linear_closed_form() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 5 * 5, 4))
    cost = count_macs_params(model, (3, 5, 5))
    conv = 8 * 5 * 5 * 3 * 3 * 3
    linear = 8 * 5 * 5 * 4
    assert cost.macs == conv + linear
    assert cost.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2", "densenet121", "vgg16_bn", "efficientnet_b0"])
def test_torchvision_published_gflops(name: str) -> None:
    import torchvision

    # the published number lives in the weights' metadata (no download needed to read it)
    gflops = float(torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"])
    torch.manual_seed(0)
    model = torchvision.models.get_model(name)
    cost = count_macs_params(model, (3, 224, 224))
    assert abs(cost.macs / 1e9 - gflops) / gflops < 0.03
