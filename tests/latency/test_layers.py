"""Layer widths predicted from group counts match what Torch-Pruning's surgery really leaves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cosep_deploy.latency.layers import layer_specs
from cosep_deploy.latency.prune_latency import min_count, pruned_copy, setup_groups
from cosep_deploy.models import ModelSpec, build_model
from cosep_deploy.prune import PruneConfig


@pytest.mark.parametrize(
    ("name", "size", "channels"),
    [
        ("resnet20", 8, 1),
        ("mobilenetv2_cifar", 8, 1),
        ("vgg16_cifar", 8, 1),
        ("resnet50", 32, 3),  # the benchmark's ImageNet models, at a small input
        ("mobilenet_v2", 32, 3),
        ("vgg16_bn", 32, 3),  # flatten of a 7x7 map into the classifier: 49 inputs per channel
    ],
)
def test_predicted_widths_match_the_pruned_model(name: str, size: int, channels: int) -> None:
    model = build_model(ModelSpec(name=name, num_classes=10, in_channels=channels, image_size=size), seed=0).eval()
    example = torch.randn(2, channels, size, size)
    work, _, groups, _ = setup_groups(model, example, PruneConfig(method="l1", ratio=1.0))
    specs = layer_specs(work, example, groups)
    assert {s.name for s in specs} == {n for n, m in work.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)}
    if name == "mobilenetv2_cifar":
        assert any(s.tied for s in specs)
    rng = np.random.default_rng(0)
    sizes = {g.root: g.size for g in groups}
    counts = {g.root: int(rng.integers(min_count(g.size, 0.1, 1), g.size + 1)) for g in groups}
    pruned, _ = pruned_copy(work, example, {g.root: list(range(g.size)) for g in groups}, counts)
    modules = dict(pruned.named_modules())
    for s in specs:
        mod = modules[s.name]
        real = (
            (mod.in_features, mod.out_features) if isinstance(mod, nn.Linear) else (mod.in_channels, mod.out_channels)
        )
        assert s.widths(counts, sizes) == real, s.name


def test_min_count() -> None:
    assert min_count(64, 0.1, 16) == 16
    assert min_count(512, 0.1, 16) == 64  # 51.2 -> 52 -> 64
    assert min_count(10, 0.1, 16) == 10  # never above the group's size
