"""CIFAR VGG-16 and VGG-19 with batch norm (the variant used in network-slimming and CoSeP experiments).

The 13 (16) 3x3 conv layers of Simonyan & Zisserman, each followed by BN and ReLU, five 2x2 max-pools,
global average pooling and a single ``Linear(512, num_classes)``. The pools use ``ceil_mode=True`` so an
8x8 input does not shrink to zero after the third pool (1x1 stays 1x1); at 32x32 this is identical to
the usual floor pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from cosep_deploy.models.registry import register_model

__all__ = ["VGG_CONFIGS", "CifarVGG", "vgg16_cifar", "vgg19_cifar"]

# "M" is a 2x2 max-pool; numbers are conv output channels
VGG_CONFIGS: dict[int, list[int | str]] = {
    16: [64, 64, "M", 128, 128, "M", *[256] * 3, "M", *[512] * 3, "M", *[512] * 3, "M"],
    19: [64, 64, "M", 128, 128, "M", *[256] * 4, "M", *[512] * 4, "M", *[512] * 4, "M"],
}


class CifarVGG(nn.Module):
    """``features`` (conv-BN-ReLU and pools, as one Sequential) then pool, flatten, ``classifier``."""

    def __init__(self, depth: int, *, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if depth not in VGG_CONFIGS:
            raise ValueError(f"VGG depth must be one of {sorted(VGG_CONFIGS)}, found {depth}")
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG_CONFIGS[depth]:
            if item == "M":
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
            else:
                out = int(item)
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
                channels = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


@register_model("vgg16_cifar", description="CIFAR VGG-16 with BN (14.7M params), global-pool + 1 FC")
def vgg16_cifar(*, num_classes: int = 10, in_channels: int = 3) -> CifarVGG:
    return CifarVGG(16, num_classes=num_classes, in_channels=in_channels)


@register_model("vgg19_cifar", description="CIFAR VGG-19 with BN (20.0M params), global-pool + 1 FC")
def vgg19_cifar(*, num_classes: int = 10, in_channels: int = 3) -> CifarVGG:
    return CifarVGG(19, num_classes=num_classes, in_channels=in_channels)
