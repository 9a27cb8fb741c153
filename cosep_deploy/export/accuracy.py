"""Task accuracy of an exported model, measured with ONNX Runtime on CPU on a labelled split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset

__all__ = ["onnx_accuracy"]


def onnx_accuracy(
    onnx_path: str | Path, dataset: Dataset[Any], *, batch_size: int = 256, threads: int | None = None
) -> dict[str, Any]:
    """Top-1 of ``onnx_path`` over ``dataset`` (images, labels) and the number of samples."""
    from ..backends.onnxruntime import OnnxRuntimeRunner

    correct = total = 0
    with OnnxRuntimeRunner(onnx_path, threads=threads) as runner:
        name = runner.info().input_names[0]
        for images, labels in DataLoader(dataset, batch_size=batch_size):
            logits = next(iter(runner.infer({name: images.numpy().astype(np.float32)}).values()))
            correct += int((logits.argmax(-1) == labels.numpy()).sum())
            total += int(labels.numel())
    return {"top1": correct / max(total, 1), "samples": total}
