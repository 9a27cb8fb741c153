"""Class statistics are collected with the evaluation transforms (issue 15): the same images give the same
statistics whatever the augmentation RNG does; the plan records it; random transforms we cannot replace
are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cosep_deploy.data import ClassBalancedSubset, load_dataset, make_loader
from cosep_deploy.errors import ConfigError
from cosep_deploy.prune import PruneConfig, prune
from cosep_deploy.prune.stats_loader import random_transforms, statistics_loader
from cosep_deploy.separability import collect_class_stats
from tests.data.test_folders import write_fake_cifar10, write_image_tree


def _net(classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, classes),
    ).eval()


def _means(model: nn.Module, loader: object, aug_seed: int) -> np.ndarray:
    torch.manual_seed(aug_seed)  # CifarBatches draws its crops and flips from the global RNG
    stats = collect_class_stats(model, loader, ["1"], num_classes=10)  # type: ignore[arg-type]
    return np.asarray(stats["1"].mean)


def test_cifar_statistics_do_not_depend_on_the_augmentation_rng(tmp_path: Path) -> None:
    root = write_fake_cifar10(tmp_path, per_batch=40)
    bundle = load_dataset(f"cifar10:{root},augment=1")
    assert bundle.train.augment  # type: ignore[attr-defined]
    loader = make_loader(bundle.train, batch_size=50)
    model = _net()
    # the raw loader: two augmentation draws give different statistics (so the check below can fail)
    assert not np.allclose(_means(model, loader, 0), _means(model, loader, 1))
    plain, how = statistics_loader(loader)
    assert "augment switched off" in how
    np.testing.assert_array_equal(_means(model, plain, 0), _means(model, plain, 1))
    assert bundle.train.augment  # type: ignore[attr-defined]  # the caller's dataset is left alone
    # the same images, in the same order, as the evaluation view of the dataset
    first = next(iter(plain))
    assert torch.equal(first[1], next(iter(loader))[1])


def test_prune_records_and_uses_evaluation_transforms(tmp_path: Path) -> None:
    root = write_fake_cifar10(tmp_path, per_batch=40)
    bundle = load_dataset(f"cifar10:{root},augment=1")
    subset = ClassBalancedSubset(bundle.train, 4, seed=0, allow_fewer=True)
    loader = make_loader(subset, batch_size=64)
    example = torch.zeros(2, 3, 32, 32)
    plans = []
    for aug_seed in (0, 1):
        torch.manual_seed(aug_seed)
        _, plan = prune(_net(), loader, example_inputs=example, config=PruneConfig(images_per_class=2))
        plans.append(plan)
    assert "augment switched off" in plans[0].config["statistics_transforms"]
    assert [g["kept"] for g in plans[0].groups] == [g["kept"] for g in plans[1].groups]
    assert [g["curve"] for g in plans[0].groups] == [g["curve"] for g in plans[1].groups]


def test_image_folder_uses_its_eval_transform_and_unknown_randoms_are_refused(tmp_path: Path) -> None:
    from torchvision import transforms

    root = write_image_tree(tmp_path / "tiny", {"cat": 3, "dog": 3})
    bundle = load_dataset(f"imagefolder:{root},size=16,augment=1")
    assert random_transforms(bundle.train.transform) == ["RandomResizedCrop", "RandomHorizontalFlip"]  # type: ignore[attr-defined]
    plain, how = statistics_loader(make_loader(bundle.train, batch_size=6))
    assert "eval_transform" in how
    torch.manual_seed(0)
    a = next(iter(plain))[0]
    torch.manual_seed(1)
    assert torch.equal(a, next(iter(plain))[0])
    del bundle.train.eval_transform  # type: ignore[attr-defined]  # a user's dataset without one
    with pytest.raises(ConfigError, match="RandomResizedCrop"):
        statistics_loader(make_loader(bundle.train, batch_size=6))
    bundle.train.transform = transforms.Compose([transforms.Resize(16), transforms.ToTensor()])  # type: ignore[attr-defined]
    same = make_loader(bundle.train, batch_size=6)
    assert statistics_loader(same)[0] is same
