"""MACs and parameter counts.

Convention: tables in this field say "FLOPs" and mean multiply-accumulates (MACs). We count MACs of
convolutions and matrix products only (what torchvision's published GFLOPS count), from PyTorch's own
``FlopCounterMode`` (which reports FLOPs = 2 x MACs for those ops); BN, activations and pooling are not
counted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["MACS_CONVENTION", "ModelCost", "count_macs_params"]

MACS_CONVENTION = "MACs of conv and matmul ops (FlopCounterMode FLOPs / 2), batch 1; BN/activations not counted"


@dataclasses.dataclass(frozen=True)
class ModelCost:
    macs: int
    params: int

    def to_json(self) -> dict[str, int | str]:
        return {"macs": self.macs, "params": self.params, "convention": MACS_CONVENTION}


def count_macs_params(model: nn.Module, input_shape: Sequence[int]) -> ModelCost:
    """MACs for one image of ``input_shape`` (C, H, W) and the number of parameters."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.zeros((1, *input_shape), device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    flops = int(counter.get_total_flops())
    params = sum(p.numel() for p in model.parameters())
    return ModelCost(macs=flops // 2, params=int(params))
