"""Class-balanced sampling, label reading and seeded loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from cosep_deploy.data import (
    ClassBalancedSubset,
    TensorImageDataset,
    class_balanced_indices,
    dataset_labels,
    make_loader,
    stratified_split,
)
from cosep_deploy.errors import DataError

LABELS = np.array([0] * 10 + [1] * 6 + [2] * 8)


def test_exactly_n_per_class() -> None:
    idx = class_balanced_indices(LABELS, 5, seed=0)
    assert len(idx) == 15 and len(set(idx)) == 15
    assert np.array_equal(np.bincount(LABELS[idx]), [5, 5, 5])
    assert idx == class_balanced_indices(LABELS, 5, seed=0)
    assert idx != class_balanced_indices(LABELS, 5, seed=1)


def test_indices_are_interleaved_by_class() -> None:
    idx = class_balanced_indices(LABELS, 4, seed=0)
    assert list(LABELS[idx[:6]]) == [0, 1, 2, 0, 1, 2]


def test_too_few_samples_names_the_classes() -> None:
    with pytest.raises(DataError, match=r"class 1: 6") as info:
        class_balanced_indices(LABELS, 7)
    assert "class 0" not in str(info.value)
    idx = class_balanced_indices(LABELS, 7, allow_fewer=True)
    assert np.array_equal(np.bincount(LABELS[idx]), [7, 6, 7])


def test_absent_class_is_caught_with_num_classes() -> None:
    with pytest.raises(DataError, match="class 3: 0"):
        class_balanced_indices(LABELS, 2, num_classes=4)


def test_stratified_split_partitions() -> None:
    train, val = stratified_split(LABELS, 0.25, seed=0)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(LABELS)))
    assert np.array_equal(np.bincount(LABELS[val]), [2, 2, 2])  # round(2.5) == 2 (banker's), 1.5 -> 2, 2


class _PlainDataset(Dataset[tuple[torch.Tensor, int]]):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.zeros(1), i % 2


def test_dataset_labels_reads_every_kind() -> None:
    images = torch.zeros(6, 1, 2, 2)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    ours = TensorImageDataset(images, labels)
    assert dataset_labels(ours).tolist() == labels.tolist()
    assert dataset_labels(TensorDataset(images, labels)).tolist() == labels.tolist()
    assert dataset_labels(Subset(ours, [5, 0])).tolist() == [2, 0]
    assert dataset_labels(_PlainDataset()).tolist() == [0, 1, 0, 1]


def test_class_balanced_subset_on_digits() -> None:
    from cosep_deploy.data import load_dataset

    train = load_dataset("digits").train
    subset = ClassBalancedSubset(train, 3, seed=0)
    assert len(subset) == 30
    assert np.array_equal(np.bincount(dataset_labels(subset)), [3] * 10)
    assert np.array_equal(subset.targets, dataset_labels(subset))
    with pytest.raises(DataError, match="too few"):
        ClassBalancedSubset(train, 1000)


def test_loader_is_seeded_and_leaves_global_rng_alone() -> None:
    data = TensorImageDataset(torch.arange(20.0).view(20, 1, 1, 1), torch.arange(20) % 4)

    def order(seed: int) -> list[int]:
        return [int(v) for x, _ in make_loader(data, batch_size=8, shuffle=True, seed=seed) for v in x.flatten()]

    state = torch.get_rng_state()
    first = order(3)
    assert torch.equal(state, torch.get_rng_state())
    assert first == order(3)
    assert sorted(first) == list(range(20))
    assert first != order(4)
    batches = list(make_loader(data, batch_size=8))
    assert [len(b[1]) for b in batches] == [8, 8, 4]
    assert batches[0][1].dtype == torch.int64
    with pytest.raises(DataError):
        make_loader(data, batch_size=0)
