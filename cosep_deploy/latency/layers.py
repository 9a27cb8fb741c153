"""The layers whose time a latency table measures, and which channel groups set their widths.

A convolution's time depends on both its input and its output channels, so one layer can depend on two
prunable groups (the group that produces its input and the group it belongs to): neighbouring groups
interact, and the allocator sums layer costs, never group costs. A depthwise convolution's input and
output widths are the same group's count (``tied``). A fully connected layer after a flatten loses
``in_features / group size`` inputs per removed channel.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from cosep_deploy.prune.coupling import ChannelGroup

__all__ = ["LayerSpec", "layer_specs"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LayerSpec:
    """One Conv2d or Linear layer at its dense widths, with the groups its widths follow.

    ``in_groups``/``out_groups`` map a group root to the layer channels removed per removed root
    channel (1 for a plain coupling; ``H*W`` for a linear layer after a flatten; a fraction for a
    producer that covers part of a concatenation).
    """

    name: str
    kind: str  # "conv" | "depthwise" | "linear"
    in_channels: int
    out_channels: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    input_hw: tuple[int, int] = (1, 1)
    conv_groups: int = 1  # a grouped (not depthwise) convolution's groups; depthwise: its channels
    in_groups: Mapping[str, float] = dataclasses.field(default_factory=dict)
    out_groups: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @property
    def tied(self) -> bool:
        """Input and output widths are one count (depthwise convolution)."""
        return self.kind == "depthwise"

    def signature(self) -> str:
        """What the layer's time depends on besides batch and kept widths: the table's row key."""
        d = {
            "kind": self.kind,
            "in": self.in_channels,
            "out": self.out_channels,
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "dilation": list(self.dilation),
            "input_hw": list(self.input_hw),
            "conv_groups": self.conv_groups,
        }
        text = json.dumps(d, sort_keys=True)
        return f"{self.kind}:{self.in_channels}x{self.out_channels}:" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def widths(self, counts: Mapping[str, int], sizes: Mapping[str, int]) -> tuple[int, int]:
        """(input, output) channels when every group ``g`` keeps ``counts[g]`` of its ``sizes[g]``."""

        def width(full: int, follows: Mapping[str, float]) -> int:
            removed = sum(share * (sizes[g] - counts.get(g, sizes[g])) for g, share in follows.items())
            return max(1, round(full - removed))

        out = width(self.out_channels, self.out_groups)
        return (out if self.tied else width(self.in_channels, self.in_groups)), out

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["in_groups"], d["out_groups"] = dict(self.in_groups), dict(self.out_groups)
        return d


def _input_shapes(model: nn.Module, example: torch.Tensor) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(name: str) -> Any:
        def record(module: nn.Module, inputs: Any, output: Any) -> None:  # returns None: output unchanged
            shapes.setdefault(name, tuple(inputs[0].shape))

        return record

    handles = [
        mod.register_forward_hook(hook(name))
        for name, mod in model.named_modules()
        if isinstance(mod, nn.Conv2d | nn.Linear)
    ]
    try:
        with torch.no_grad():
            model.eval()(example[:1])
    finally:
        for h in handles:
            h.remove()
    return shapes


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, tuple | list) else (int(v), int(v))


def _follows(groups: Sequence[ChannelGroup], modules: Mapping[str, nn.Module]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per layer: {root: share} for its output side (members) and its input side (consumers)."""
    outs: dict[str, dict[str, float]] = {}
    ins: dict[str, dict[str, float]] = {}
    for g in groups:
        for m in g.members:
            outs.setdefault(m.name, {})[g.root] = len(m.root_idxs) / g.size
        for c in g.consumers:
            mod = modules[c]
            share = 1.0
            if isinstance(mod, nn.Linear) and mod.in_features % g.size == 0 and mod.in_features != g.size:
                share = mod.in_features / g.size  # flattened feature map: H*W features per channel
            ins.setdefault(c, {})[g.root] = share
    return outs, ins


def layer_specs(model: nn.Module, example: torch.Tensor, groups: Sequence[ChannelGroup]) -> list[LayerSpec]:
    """Every Conv2d/Linear layer of ``model`` (in call order) with the prunable ``groups`` it follows.

    Grouped (not depthwise) convolutions are described as ``conv`` at their dense widths; the pruning
    driver leaves groups containing them unpruned.
    """
    shapes = _input_shapes(model, example)
    modules = dict(model.named_modules())
    outs, ins = _follows(groups, modules)
    specs = []
    for name in shapes:
        mod = modules[name]
        shape = shapes[name]
        if isinstance(mod, nn.Linear):
            specs.append(
                LayerSpec(
                    name=name,
                    kind="linear",
                    in_channels=mod.in_features,
                    out_channels=mod.out_features,
                    in_groups=ins.get(name, {}),
                    out_groups=outs.get(name, {}),
                )
            )
            continue
        assert isinstance(mod, nn.Conv2d)
        depthwise = mod.groups > 1 and mod.groups == mod.in_channels == mod.out_channels
        specs.append(
            LayerSpec(
                name=name,
                kind="depthwise" if depthwise else "conv",
                in_channels=mod.in_channels,
                out_channels=mod.out_channels,
                kernel=_pair(mod.kernel_size),
                stride=_pair(mod.stride),
                padding=_pair(mod.padding),
                dilation=_pair(mod.dilation),
                input_hw=(int(shape[-2]), int(shape[-1])),
                conv_groups=int(mod.groups),
                in_groups={} if depthwise else ins.get(name, {}),
                out_groups=outs.get(name, {}),
            )
        )
    return specs
