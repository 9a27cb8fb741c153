"""Architectures the prune stage refuses up front, each with the one-line reason.

CoSeP removes CNN channels through Torch-Pruning's dependency graph. Some torchvision classification
models cannot be pruned that way, and finding out late (after statistics, inside surgery) wastes minutes and
gives a confusing error. They are refused before any work by their class, so a user's subclass or a model
built under another name is caught as well.
"""

from __future__ import annotations

from torch import nn

__all__ = ["REFUSED_CLASSES", "refusal_reason"]

REFUSED_CLASSES = {
    "VisionTransformer": "vision transformer: CoSeP prunes convolutional channels, and attention heads are "
    "not channel groups",
    "SwinTransformer": "Swin transformer: CoSeP prunes convolutional channels; windowed attention is not supported",
    "MaxVit": "MaxViT mixes convolutions with attention over relative-position tables that fix the channel "
    "count: not supported",
    "ShuffleNetV2": "the channel shuffle reorders channels in a way the dependency graph does not "
    "follow (pruning would mix up channels): not supported",
}


def refusal_reason(model: nn.Module) -> str | None:
    """Why ``model`` cannot be pruned structurally, or None."""
    for cls in type(model).__mro__:
        if cls.__name__ in REFUSED_CLASSES:
            return f"{type(model).__name__}: {REFUSED_CLASSES[cls.__name__]}"
    return None
