"""BatchNorm recalibration after surgery: re-estimate every BN layer's running mean and variance on a few
batches of real data, so the pruned network's accuracy before fine-tuning measures the channel selection,
not statistics left over from the dense network. Weights are not touched (no gradients)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["recalibrate_batchnorm"]

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def recalibrate_batchnorm(model: nn.Module, loader: Iterable[Any], *, max_batches: int | None = None) -> dict[str, Any]:
    """Reset the running statistics of every BatchNorm in ``model`` and average them (cumulative moving
    average, ``momentum=None``) over up to ``max_batches`` batches of ``loader`` (``(images, labels)`` or
    images). Returns what was done, for the plan. The model is left in eval mode."""
    layers = [m for m in model.modules() if isinstance(m, _BN) and m.track_running_stats]
    if not layers:
        return {"layers": 0, "batches": 0, "images": 0}
    saved = [(m, m.momentum) for m in layers]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    batches = images = 0
    try:
        for m in layers:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        with torch.no_grad():
            for batch in loader:
                if max_batches is not None and batches >= max_batches:
                    break
                x = batch[0] if isinstance(batch, list | tuple) else batch
                if x.shape[0] < 2:
                    continue  # BN in training mode needs more than one value per channel
                model(x.to(device))
                batches, images = batches + 1, images + int(x.shape[0])
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.eval()
    return {"layers": len(layers), "batches": batches, "images": images}
