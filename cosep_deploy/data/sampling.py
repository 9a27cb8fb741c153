"""Seeded, class-aware index selection: stratified splits, class-balanced subsets, loaders.

Calibration and class-conditional statistics need the same number of samples from every class, drawn
the same way on every run; everything here is a pure function of the labels and a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from cosep_deploy.errors import DataError

__all__ = [
    "ClassBalancedSubset",
    "class_balanced_indices",
    "dataset_labels",
    "make_loader",
    "stratified_split",
]


def dataset_labels(dataset: Dataset[Any]) -> np.ndarray:
    """All labels of ``dataset`` as an int64 array, without loading images where possible.

    Reads ``.targets`` (torchvision datasets, ours), ``TensorDataset``'s second tensor, and maps through
    ``Subset`` indices; any other dataset is iterated once (slow: it loads every sample).
    """
    if isinstance(dataset, Subset):
        return dataset_labels(dataset.dataset)[np.asarray(dataset.indices, dtype=np.int64)]
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        if isinstance(targets, torch.Tensor):
            return targets.detach().cpu().numpy().astype(np.int64)
        return np.asarray(targets, dtype=np.int64)
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
        return dataset.tensors[1].detach().cpu().numpy().astype(np.int64)
    try:
        return np.asarray([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)  # type: ignore[arg-type]
    except (TypeError, IndexError, ValueError) as exc:
        raise DataError(
            f"cannot read labels from {type(dataset).__name__}: expected (image, label) samples or a "
            f"'targets' attribute ({exc})"
        ) from exc


def stratified_split(
    labels: Sequence[int] | np.ndarray, val_fraction: float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (train, val) with ``round(val_fraction * n_c)`` of each class in val.

    Both index arrays come back sorted, so the split is independent of anything but labels and seed.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be in (0, 1), found {val_fraction}")
    y = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        val.append(idx[: round(val_fraction * len(idx))])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[val_idx] = False
    return np.flatnonzero(mask), val_idx


def class_balanced_indices(
    labels: Sequence[int] | np.ndarray,
    per_class: int,
    *,
    seed: int = 0,
    num_classes: int | None = None,
    allow_fewer: bool = False,
) -> list[int]:
    """Indices of ``per_class`` randomly chosen samples of every class.

    Classes are those present in ``labels``, or ``0..num_classes-1`` when given (so an absent class is
    caught). The result is interleaved class by class (c0, c1, ..., c0, c1, ...), so any prefix of it is
    itself nearly balanced. A class with fewer samples raises :class:`DataError` unless ``allow_fewer``,
    in which case all of its samples are taken.
    """
    if per_class < 1:
        raise DataError(f"per_class must be at least 1, found {per_class}")
    y = np.asarray(labels, dtype=np.int64)
    classes = np.arange(num_classes) if num_classes is not None else np.unique(y)
    rng = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    short: list[str] = []
    for cls in classes:
        idx = np.flatnonzero(y == cls)
        if len(idx) < per_class:
            short.append(f"class {int(cls)}: {len(idx)}")
        chosen.append(rng.permutation(idx)[:per_class])
    if short and not allow_fewer:
        shown = ", ".join(short[:10]) + (f", ... ({len(short)} classes)" if len(short) > 10 else "")
        raise DataError(
            f"cannot draw {per_class} samples per class: too few in {shown}; lower the per-class count, "
            f"use a larger split, or pass allow_fewer=True"
        )
    out: list[int] = []
    for rank in range(max((len(c) for c in chosen), default=0)):
        out.extend(int(c[rank]) for c in chosen if rank < len(c))
    return out


class ClassBalancedSubset(Subset[Any]):
    """``per_class`` seeded samples of every class of ``dataset`` (see :func:`class_balanced_indices`)."""

    def __init__(
        self,
        dataset: Dataset[Any],
        per_class: int,
        seed: int = 0,
        *,
        num_classes: int | None = None,
        allow_fewer: bool = False,
    ) -> None:
        indices = class_balanced_indices(
            dataset_labels(dataset), per_class, seed=seed, num_classes=num_classes, allow_fewer=allow_fewer
        )
        super().__init__(dataset, indices)
        self.per_class = per_class
        self.seed = seed

    @property
    def targets(self) -> np.ndarray:
        return dataset_labels(self.dataset)[np.asarray(self.indices, dtype=np.int64)]


def make_loader(
    dataset: Dataset[Any],
    *,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader[Any]:
    """A ``DataLoader`` whose shuffling (and worker seeds) come from its own seeded generator.

    The global torch RNG is neither read nor advanced, so two loaders with the same seed yield the same
    batches regardless of what else ran before.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, found {batch_size}")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=generator,
        persistent_workers=False,
    )
