"""The built-in datasets: scikit-learn digits (real) and seeded synthetic images (shapes only)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cosep_deploy.data import dataset_labels, load_dataset
from cosep_deploy.errors import ConfigError


def test_digits_default_bundle() -> None:
    bundle = load_dataset()
    assert bundle.num_classes == 10
    assert bundle.class_names == [str(i) for i in range(10)]
    assert bundle.input_shape == (1, 8, 8)
    assert not bundle.is_synthetic
    assert len(bundle.train) + len(bundle.val) == 1797  # type: ignore[arg-type]
    assert 350 <= len(bundle.val) <= 370  # type: ignore[arg-type]
    image, label = bundle.train[0]
    assert image.dtype == torch.float32 and tuple(image.shape) == (1, 8, 8)
    assert isinstance(label, int) and 0 <= label < 10
    assert "digits" in bundle.description and "\n" not in bundle.description


def test_digits_split_is_deterministic_and_seeded() -> None:
    a, b = load_dataset("digits"), load_dataset("digits")
    assert torch.equal(a.train.images, b.train.images)  # type: ignore[attr-defined]
    assert np.array_equal(dataset_labels(a.val), dataset_labels(b.val))
    c = load_dataset("digits", seed=1)
    assert not torch.equal(a.val.images, c.val.images)  # type: ignore[attr-defined]
    assert str(c.spec) == "digits:seed=1"


def test_digits_split_is_stratified() -> None:
    bundle = load_dataset("digits")
    train, val = dataset_labels(bundle.train), dataset_labels(bundle.val)
    total = np.bincount(np.concatenate([train, val]), minlength=10)
    val_counts = np.bincount(val, minlength=10)
    assert np.array_equal(val_counts, np.round(0.2 * total).astype(int))
    assert np.bincount(train, minlength=10).min() > 130


def test_digits_standardised_with_train_statistics() -> None:
    images = load_dataset("digits").train.images  # type: ignore[attr-defined]
    assert abs(float(images.mean())) < 1e-4
    assert abs(float(images.std()) - 1.0) < 1e-3


def test_digits_upscaled_and_three_channels() -> None:
    bundle = load_dataset("digits:size=32", channels=3)
    assert bundle.input_shape == (3, 32, 32)
    image, _ = bundle.val[5]
    assert tuple(image.shape) == (3, 32, 32)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    native = load_dataset("digits").val[5][0]
    # upscaling keeps the picture: averaging back down to 8x8 stays close to the original
    down = torch.nn.functional.avg_pool2d(image[:1][None], 4)[0]
    assert torch.corrcoef(torch.stack([down.flatten(), native.flatten()]))[0, 1] > 0.9


def test_digits_rejects_two_channels() -> None:
    with pytest.raises(ConfigError, match="channels"):
        load_dataset("digits:channels=2")


def test_synthetic_shapes_and_flags() -> None:
    bundle = load_dataset("synthetic:5,size=16,channels=2,n=40")
    assert bundle.is_synthetic
    assert "speed only" in bundle.description
    assert bundle.input_shape == (2, 16, 16) and bundle.num_classes == 5
    assert len(bundle.train) == 40 and len(bundle.val) == 10  # type: ignore[arg-type]
    image, label = bundle.train[3]
    assert tuple(image.shape) == (2, 16, 16) and isinstance(label, int)
    assert np.array_equal(np.bincount(dataset_labels(bundle.train)), [8] * 5)


def test_synthetic_is_seeded() -> None:
    a = load_dataset("synthetic:3,size=8,n=12")
    b = load_dataset("synthetic:3,size=8,n=12")
    c = load_dataset("synthetic:3,size=8,n=12,seed=1")
    assert torch.equal(a.train.images, b.train.images)  # type: ignore[attr-defined]
    assert not torch.equal(a.train.images, c.train.images)  # type: ignore[attr-defined]


def test_synthetic_classes_are_separable_by_their_means() -> None:
    bundle = load_dataset("synthetic:4,size=8,channels=1,n=200")
    x, y = bundle.train.images, bundle.train.labels  # type: ignore[attr-defined]
    means = torch.stack([x[y == c].mean(0) for c in range(4)])
    vx, vy = bundle.val.images, bundle.val.labels  # type: ignore[attr-defined]
    pred = torch.cdist(vx.flatten(1), means.flatten(1)).argmin(1)
    assert float((pred == vy).float().mean()) > 0.9
