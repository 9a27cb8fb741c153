"""Task accuracy of exported files, measured with ONNX Runtime on CPU on a labelled split.

Output closeness (:mod:`cosep_deploy.compare`) says whether two files compute the same numbers; top-1 on the
validation split says what a precision change costs in the task. Both files of a comparison see the same
batches in the same order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from cosep_deploy.errors import DataError

__all__ = ["agreement_with", "onnx_accuracy"]


def onnx_accuracy(
    onnx_path: str | os.PathLike[str], dataset: Dataset[Any], *, batch_size: int = 256, threads: int | None = None
) -> dict[str, Any]:
    """Top-1 of ``onnx_path`` over ``dataset`` (``(image, label)`` samples): ``{"top1", "correct", "samples"}``."""
    from cosep_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner

    correct = total = 0
    with OnnxRuntimeRunner(onnx_path, threads=threads) as runner:
        name = runner.info().input_names[0]
        for images, labels in _batches(dataset, batch_size):
            predicted = _first_output(runner.infer({name: images})).argmax(-1)
            correct += int((predicted == labels).sum())
            total += int(labels.shape[0])
    return {"top1": correct / total, "correct": correct, "samples": total}


def agreement_with(
    reference_onnx: str | os.PathLike[str],
    other_onnx: str | os.PathLike[str],
    dataset: Dataset[Any],
    *,
    batch_size: int = 256,
    threads: int | None = None,
) -> float:
    """Fraction of ``dataset`` on which the two files predict the same class (equal argmax); labels unused."""
    from cosep_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner

    same = total = 0
    with OnnxRuntimeRunner(reference_onnx, threads=threads) as ref, OnnxRuntimeRunner(other_onnx, threads=threads) as b:
        ref_name, other_name = ref.info().input_names[0], b.info().input_names[0]
        for images, _ in _batches(dataset, batch_size):
            a_pred = _first_output(ref.infer({ref_name: images})).argmax(-1)
            b_pred = _first_output(b.infer({other_name: images})).argmax(-1)
            same += int((a_pred == b_pred).sum())
            total += int(images.shape[0])
    return same / total


def _batches(dataset: Dataset[Any], batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(float32 images, int64 labels) batches in dataset order; an empty dataset is a :class:`DataError`."""
    from cosep_deploy.data import make_loader

    if len(dataset) == 0:  # type: ignore[arg-type]
        raise DataError("cannot measure accuracy on an empty dataset")
    for images, labels in make_loader(dataset, batch_size=batch_size):
        yield images.numpy().astype(np.float32, copy=False), labels.numpy().astype(np.int64, copy=False)


def _first_output(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """The logits: the exported classifiers have one output, and the first is the logits when there are more."""
    return next(iter(outputs.values()))
