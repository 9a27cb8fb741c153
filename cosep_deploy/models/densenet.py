"""CIFAR DenseNet-40 (Huang et al. 2017), the k=12 network of the CoSeP CIFAR experiments.

A 3x3 stem conv to 16 channels, then three dense blocks of 12 layers each. A dense layer is
BN-ReLU-Conv3x3 producing ``growth`` (12) new channels that are concatenated to its input, so block
outputs are 16+144=160, 304 and 448 channels. Between blocks a transition BN-ReLU-Conv1x1 (no
compression) plus 2x2 average pooling; at the end BN-ReLU, global pooling and one linear layer.
No bottleneck layers (not DenseNet-BC); about 1.0M parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from cosep_deploy.models.registry import register_model

__all__ = ["CifarDenseNet", "DenseLayer", "Transition", "densenet40"]


class DenseLayer(nn.Module):
    """BN-ReLU-Conv3x3 whose output is concatenated to its input (the dense connection)."""

    def __init__(self, in_planes: int, growth: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU(inplace=True)  # acts on BN's fresh output, never on x, which is concatenated
        self.conv = nn.Conv2d(in_planes, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(self.relu(self.bn(x)))], dim=1)


class Transition(nn.Module):
    """BN-ReLU-Conv1x1-AvgPool2x2 between dense blocks (halves the resolution)."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)
        self.pool = nn.AvgPool2d(2, ceil_mode=True)  # ceil: odd sizes keep their last row and column

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.relu(self.bn(x))))


class CifarDenseNet(nn.Module):
    """DenseNet of depth ``3n+4``, growth ``growth``: ``conv1``, ``block1``, ``trans1``, ..., ``fc``."""

    def __init__(self, depth: int = 40, growth: int = 12, *, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if (depth - 4) % 3 != 0 or depth < 7:
            raise ValueError(f"DenseNet depth must be 3n+4 (40, 100, ...), found {depth}")
        n = (depth - 4) // 3
        channels = 16  # stem width of the paper's non-BC CIFAR DenseNets
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        for b in range(3):
            layers = []
            for _ in range(n):
                layers.append(DenseLayer(channels, growth))
                channels += growth
            blocks.append(nn.Sequential(*layers))
            if b < 2:
                blocks.append(Transition(channels, channels))
        self.block1, self.trans1, self.block2, self.trans2, self.block3 = blocks
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.block3(self.trans2(self.block2(self.trans1(self.block1(x)))))
        return self.fc(self.flatten(self.avgpool(self.relu(self.bn(x)))))


@register_model("densenet40", description="CIFAR DenseNet-40, growth 12, no bottleneck (1.0M params)")
def densenet40(*, num_classes: int = 10, in_channels: int = 3) -> CifarDenseNet:
    return CifarDenseNet(40, 12, num_classes=num_classes, in_channels=in_channels)
