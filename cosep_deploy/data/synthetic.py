"""Seeded random images for shape checks and speed runs: never for accuracy claims.

Each class has its own random mean image (smooth, low-resolution noise upsampled), and samples add unit
Gaussian noise to it, so a network can learn the labels quickly: enough to exercise training, pruning and
export end to end, but the numbers mean nothing about real data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cosep_deploy.data.bundle import DatasetBundle, TensorImageDataset
from cosep_deploy.data.spec import DataSpec

__all__ = ["load_synthetic_bundle", "synthetic_images"]


def synthetic_images(
    num_samples: int,
    num_classes: int,
    *,
    size: int,
    channels: int,
    generator: torch.Generator,
    class_means: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_samples`` images with balanced, shuffled labels around ``class_means`` [K,C,H,W]."""
    labels = torch.arange(num_samples) % num_classes
    labels = labels[torch.randperm(num_samples, generator=generator)]
    noise = torch.randn(num_samples, channels, size, size, generator=generator)
    return class_means[labels] + noise, labels


def _class_means(num_classes: int, size: int, channels: int, generator: torch.Generator) -> torch.Tensor:
    low = max(2, size // 4)  # a coarse pattern survives downsampling in any CNN
    coarse = torch.randn(num_classes, channels, low, low, generator=generator)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def load_synthetic_bundle(spec: DataSpec, *, size: int | None, channels: int | None, seed: int) -> DatasetBundle:
    """Random images: ``spec.n`` (default 512) training samples and a quarter as many for val."""
    num_classes = spec.num_classes or 10
    size = 32 if size is None else size
    channels = 3 if channels is None else channels
    n_train = spec.n or 512
    n_val = max(n_train // 4, num_classes)
    generator = torch.Generator().manual_seed(seed)
    means = _class_means(num_classes, size, channels, generator)
    x_train, y_train = synthetic_images(
        n_train, num_classes, size=size, channels=channels, generator=generator, class_means=means
    )
    x_val, y_val = synthetic_images(
        n_val, num_classes, size=size, channels=channels, generator=generator, class_means=means
    )
    description = (
        f"synthetic: seeded random images (seed {seed}), {n_train} train / {n_val} val, "
        f"{num_classes} classes, {channels}x{size}x{size}; for shapes and speed only, "
        f"accuracy on it means nothing"
    )
    return DatasetBundle(
        train=TensorImageDataset(x_train, y_train),
        val=TensorImageDataset(x_val, y_val),
        num_classes=num_classes,
        input_shape=(channels, size, size),
        class_names=[f"class_{i}" for i in range(num_classes)],
        spec=spec,
        description=description,
        is_synthetic=True,
    )
