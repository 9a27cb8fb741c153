"""What ``load_dataset`` returns: a train/val pair plus what callers need to build a model for it."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.utils.data import Dataset

from cosep_deploy.data.spec import DataSpec

__all__ = ["DatasetBundle", "TensorImageDataset"]


class TensorImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """Images and labels held as tensors in memory; yields ``(float tensor [C,H,W], int label)``.

    Unlike ``TensorDataset`` the label comes back as a Python ``int`` (like torchvision datasets), and
    ``targets`` exposes all labels at once so class-balanced sampling never touches the images.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | np.ndarray) -> None:
        labels_t = torch.as_tensor(labels, dtype=torch.long)
        if images.ndim != 4 or images.shape[0] != labels_t.shape[0]:
            raise ValueError(
                f"expected images [N,C,H,W] and N labels, found {tuple(images.shape)} and {tuple(labels_t.shape)}"
            )
        self.images = images
        self.labels = labels_t

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    @property
    def targets(self) -> np.ndarray:
        return self.labels.numpy()


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetBundle:
    """A dataset ready for use: both splits, the class list, and the input shape a model must accept.

    ``spec`` is the resolved spec (options given as ``load_dataset`` arguments filled in), so
    ``load_dataset(str(bundle.spec))`` loads the same data again. ``is_synthetic`` marks data that carries
    no meaning: never report accuracy measured on it.
    """

    train: Dataset[tuple[torch.Tensor, int]]
    val: Dataset[tuple[torch.Tensor, int]]
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W)
    class_names: list[str]
    spec: DataSpec
    description: str
    is_synthetic: bool = False

    @property
    def in_channels(self) -> int:
        return self.input_shape[0]

    @property
    def image_size(self) -> int:
        return self.input_shape[1]
