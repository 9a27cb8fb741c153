"""Class statistics are collected with the evaluation transforms: the same images, no random augmentation.

The statistics describe how the trained network separates the classes on images as it sees them at test
time; random crops and flips would add variance the deployed model never meets and make two runs with the
same images disagree. :func:`statistics_loader` rebuilds a ``DataLoader`` over the same samples with the
augmentation switched off where it knows how (a dataset's ``augment`` flag, as in our CIFAR datasets; a
``transform`` holding random operations replaced by the dataset's ``eval_transform``, as our image
folders carry) and refuses a loader whose random transforms it cannot replace. What it did is recorded in
the plan.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from cosep_deploy.errors import ConfigError

__all__ = ["evaluation_view", "random_transforms", "statistics_loader"]

_RANDOM_NAMES = ("ColorJitter", "AutoAugment", "RandAugment", "TrivialAugmentWide", "AugMix", "GaussianBlur")


def random_transforms(transform: Any) -> list[str]:
    """Names of the random operations in a (torchvision-style, possibly composed) transform."""
    parts = getattr(transform, "transforms", None)
    if isinstance(parts, list | tuple):
        return [name for part in parts for name in random_transforms(part)]
    name = type(transform).__name__
    return [name] if name.startswith("Random") or name in _RANDOM_NAMES else []


def evaluation_view(dataset: Any) -> tuple[Any, str]:
    """``dataset`` with the evaluation transforms (a shallow copy; the caller's object is not changed), and
    how: the same object back when it has no random augmentation. Walks ``Subset`` chains."""
    inner = getattr(dataset, "dataset", None)
    if inner is not None and hasattr(dataset, "indices"):  # a Subset (ClassBalancedSubset, shards)
        view, how = evaluation_view(inner)
        if view is inner:
            return dataset, how
        outer = copy.copy(dataset)
        outer.dataset = view
        return outer, how
    if getattr(dataset, "augment", False) is True:
        plain = copy.copy(dataset)
        plain.augment = False
        return plain, f"evaluation transforms ({type(dataset).__name__}.augment switched off)"
    transform = getattr(dataset, "transform", None)
    randoms = random_transforms(transform) if transform is not None else []
    if not randoms:
        return dataset, "evaluation transforms (no random augmentation in the data)"
    eval_tf = getattr(dataset, "eval_transform", None)
    if eval_tf is None:
        raise ConfigError(
            f"the pruning loader applies random augmentation ({', '.join(randoms)}): class statistics need the "
            "evaluation transforms; pass a loader without augmentation or set dataset.eval_transform"
        )
    plain = copy.copy(dataset)
    plain.transform = eval_tf
    return plain, f"evaluation transforms ({type(dataset).__name__}.eval_transform instead of {', '.join(randoms)})"


def statistics_loader(loader: Iterable[Any]) -> tuple[Iterable[Any], str]:
    """A loader over the same samples, in the same order and batches, with the evaluation transforms."""
    from torch.utils.data import DataLoader

    if not isinstance(loader, DataLoader):
        return loader, "as given (not a DataLoader: transforms not inspected)"
    view, how = evaluation_view(loader.dataset)
    if view is loader.dataset:
        return loader, how
    common: dict[str, Any] = {
        "num_workers": loader.num_workers,
        "collate_fn": loader.collate_fn,
        "pin_memory": loader.pin_memory,
    }
    if loader.batch_size is None:
        return DataLoader(view, batch_sampler=loader.batch_sampler, **common), how
    rebuilt = DataLoader(
        view, batch_size=loader.batch_size, sampler=loader.sampler, drop_last=loader.drop_last, **common
    )
    return rebuilt, how
