"""Calibration sets for INT8: a class-balanced, seeded sample of real images, hashed and recorded.

The hash (over the image bytes and labels) goes into every INT8 artifact, so a result names exactly the
images its activation ranges came from. A calibration set that misses a class is refused: its ranges
would not cover that class's activations. Recipes and recommended sizes: ``calibration/README.md``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError

__all__ = ["CalibrationSet", "calibration_set_from_dataset"]


@dataclasses.dataclass(frozen=True)
class CalibrationSet:
    """Images [N, C, H, W] (float32) and labels, with a recipe and a content hash."""

    images: np.ndarray
    labels: np.ndarray
    recipe: dict[str, Any]

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.images, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return h.hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {**self.recipe, "images": int(self.images.shape[0]), "sha256": self.sha256}

    def batches(self, input_name: str, batch_size: int = 32) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, self.images.shape[0], batch_size):
            yield {input_name: self.images[start : start + batch_size]}

    def data_reader(self, input_name: str, batch_size: int = 32) -> Any:
        """An ONNX Runtime ``CalibrationDataReader`` over this set."""
        from onnxruntime.quantization import CalibrationDataReader

        outer = self

        class _Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._it = outer.batches(input_name, batch_size)

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self._it, None)

            def rewind(self) -> None:
                self._it = outer.batches(input_name, batch_size)

        return _Reader()


def calibration_set_from_dataset(
    dataset: Dataset[Any], per_class: int, *, num_classes: int, seed: int = 0, source: str = ""
) -> CalibrationSet:
    """``per_class`` images of every class (seeded); a class with too few images is a :class:`DataError`."""
    from ..data import class_balanced_indices, dataset_labels

    labels = dataset_labels(dataset)
    counts = np.bincount(labels, minlength=num_classes)
    short = [c for c in range(num_classes) if counts[c] < per_class]
    if short:
        shown = ", ".join(f"{c} ({int(counts[c])})" for c in short[:20])
        raise DataError(
            f"calibration set needs {per_class} images of each of {num_classes} classes; classes with too few "
            f"(have): {shown}. Use a dataset split that covers every class, or lower the images per class"
        )
    idx = class_balanced_indices(labels, per_class, seed=seed)
    images = torch.stack([dataset[i][0] for i in idx]).numpy().astype(np.float32)
    recipe = {
        "source": source,
        "per_class": per_class,
        "num_classes": num_classes,
        "seed": seed,
        "sampling": "class-balanced",
    }
    return CalibrationSet(images=images, labels=labels[idx].astype(np.int64), recipe=recipe)
