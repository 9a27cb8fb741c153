"""The default dataset: scikit-learn's handwritten digits (real, labelled, offline, tiny).

1797 gray 8x8 images of 10 classes ship inside scikit-learn, so every command works without a download.
The split is stratified 80/20 with a fixed seed, so every run sees the same train and val images.
Pixels (0..16) are standardised with the training split's mean and std; images can be upscaled
(bilinear) so CIFAR-style networks apply, and replicated to 3 channels.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from cosep_deploy.data.bundle import DatasetBundle, TensorImageDataset
from cosep_deploy.data.sampling import stratified_split
from cosep_deploy.data.spec import DataSpec
from cosep_deploy.errors import ConfigError

__all__ = ["DIGITS_VAL_FRACTION", "load_digits_bundle"]

DIGITS_VAL_FRACTION = 0.2


@functools.lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    # sklearn is imported here, not at module import, so `import cosep_deploy.data` stays cheap
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)  # (1797, 8, 8), values 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _prepare(images: np.ndarray, mean: float, std: float, size: int, channels: int) -> torch.Tensor:
    x = torch.from_numpy((images - mean) / std).unsqueeze(1)  # [N,1,8,8]
    if size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if channels > 1:
        x = x.repeat(1, channels, 1, 1)  # repeat, not expand: samples must own contiguous memory
    return x.contiguous()


def load_digits_bundle(spec: DataSpec, *, size: int | None, channels: int | None, seed: int) -> DatasetBundle:
    """Load the digits dataset at ``size`` x ``size`` (default 8) with ``channels`` (1 or 3, default 1)."""
    size = 8 if size is None else size
    channels = 1 if channels is None else channels
    if channels not in (1, 3):
        raise ConfigError(f"digits supports channels=1 or channels=3, found channels={channels}")
    images, labels = _raw_digits()
    train_idx, val_idx = stratified_split(labels, DIGITS_VAL_FRACTION, seed=seed)
    # standardise with training statistics only, so nothing about val leaks into the inputs
    mean = float(images[train_idx].mean())
    std = float(images[train_idx].std())
    train = TensorImageDataset(_prepare(images[train_idx], mean, std, size, channels), labels[train_idx])
    val = TensorImageDataset(_prepare(images[val_idx], mean, std, size, channels), labels[val_idx])
    resized = " (upscaled from 8x8)" if size != 8 else ""
    description = (
        f"digits: scikit-learn handwritten digits (real data), {len(train)} train / {len(val)} val, "
        f"10 classes, {channels}x{size}x{size}{resized}, stratified split seed {seed}"
    )
    return DatasetBundle(
        train=train,
        val=val,
        num_classes=10,
        input_shape=(channels, size, size),
        class_names=[str(i) for i in range(10)],
        spec=spec,
        description=description,
        is_synthetic=False,
    )
