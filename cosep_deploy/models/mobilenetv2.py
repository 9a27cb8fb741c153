"""CIFAR MobileNetV2 (Sandler et al. 2018) with a width multiplier.

The ImageNet network with the two changes usual for 32x32 inputs: the stem conv has stride 1 and the
second bottleneck stage (24 channels) keeps stride 1, so the feature map is 4x4, not 1x1, before pooling.
Each inverted residual is expand (1x1, skipped when t=1) -> depthwise 3x3 -> linear project (1x1), with a
residual add when the block keeps its shape.
"""

from __future__ import annotations

import torch
from torch import nn

from cosep_deploy.models.registry import register_model

__all__ = ["CifarMobileNetV2", "InvertedResidual", "make_divisible", "mobilenetv2_cifar"]

# (expansion t, output channels c, repeats n, first stride s); strides adapted to CIFAR
CIFAR_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without going more than 10% below ``value``."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


class InvertedResidual(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_planes * expansion
        self.use_residual = stride == 1 and in_planes == out_planes
        self.expand: nn.Module
        if expansion != 1:
            self.expand = nn.Sequential(
                nn.Conv2d(in_planes, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)
            )
        else:
            self.expand = nn.Identity()
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
        )
        self.project = nn.Sequential(nn.Conv2d(hidden, out_planes, 1, bias=False), nn.BatchNorm2d(out_planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_residual else out


class CifarMobileNetV2(nn.Module):
    """``features`` (stem, 17 inverted residuals, 1x1 head conv) then pool, dropout, ``classifier``."""

    def __init__(
        self, *, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.2
    ) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, found {width_mult}")
        stem = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [
            nn.Sequential(
                nn.Conv2d(in_channels, stem, 3, stride=1, padding=1, bias=False),
                nn.BatchNorm2d(stem),
                nn.ReLU6(inplace=True),
            )
        ]
        channels = stem
        for t, c, n, s in CIFAR_SETTINGS:
            out = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        layers.append(
            nn.Sequential(nn.Conv2d(channels, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU6(inplace=True))
        )
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(last, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.flatten(self.avgpool(self.features(x)))))


@register_model("mobilenetv2_cifar", description="CIFAR MobileNetV2 (2.2M params at width 1.0); kwargs: width_mult")
def mobilenetv2_cifar(
    *, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.2
) -> CifarMobileNetV2:
    return CifarMobileNetV2(num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, dropout=dropout)
