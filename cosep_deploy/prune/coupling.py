"""The one adapter around Torch-Pruning (pinned): dependency groups, channel removal, history replay.

Torch-Pruning couples every layer whose channels must go together (residual adds, conv + BN + depthwise
conv, concatenation consumers) into a *group*. Selection happens in the group's *root* channel space: the
output channels of the group's root layer; each member maps its own indices there (``root_idxs``).
No other module of cosep_deploy imports ``torch_pruning``: its public names change between releases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cosep_deploy.errors import PlanMismatchError, PruneError, unknown_name

__all__ = [
    "TORCH_PRUNING_VERSION",
    "ChannelGroup",
    "CouplingGraph",
    "GroupMember",
    "is_grouped_conv",
]

TORCH_PRUNING_VERSION = "1.6.1"


@dataclasses.dataclass(frozen=True)
class GroupMember:
    """A layer whose *output* channels belong to a group: ``root_idxs[j]`` is the root channel of its
    ``idxs[j]``-th output channel."""

    name: str
    kind: str  # "conv", "depthwise", "linear"
    idxs: tuple[int, ...]
    root_idxs: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class ChannelGroup:
    """A set of coupled layers that lose the same channels (in the root layer's channel space)."""

    root: str
    size: int  # channels in the root space
    members: tuple[GroupMember, ...]  # out-channel members (producers of the coupled channels)
    consumers: tuple[str, ...]  # layers whose input channels follow
    grouped: tuple[str, ...] = ()  # grouped (not depthwise) convolutions in the group: see is_grouped_conv

    @property
    def member_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members)


def is_grouped_conv(module: nn.Module) -> bool:
    """A grouped convolution that is not depthwise (ResNeXt, RegNet). Removing arbitrary channels from it
    would leave groups of unequal width, which Torch-Pruning's index-based removal does not handle, so
    groups that contain one are left unpruned (and the plan says so)."""
    if not isinstance(module, nn.Conv2d) or module.groups == 1:
        return False
    return not (module.groups == module.in_channels and module.out_channels % module.groups == 0)


class CouplingGraph:
    """Torch-Pruning's dependency graph for one model, seen through names.

    Building it runs the model once with gradients enabled (Torch-Pruning traces the autograd graph).
    """

    def __init__(self, model: nn.Module, example_inputs: torch.Tensor) -> None:
        import torch_pruning as tp

        self.model = model
        self._names = {m: n for n, m in model.named_modules()}
        self._modules = dict(model.named_modules())
        was_training = model.training
        try:
            with torch.enable_grad():
                self._dg = tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs, verbose=False)
        except Exception as exc:  # Torch-Pruning raises plain exceptions on unsupported graphs
            raise PruneError(
                f"Torch-Pruning could not trace {type(model).__name__}: {type(exc).__name__}: {exc}. "
                "This architecture is not supported for structural pruning."
            ) from exc
        finally:
            model.train(was_training)

    def module(self, name: str) -> nn.Module:
        try:
            return self._modules[name]
        except KeyError:
            raise PruneError(unknown_name("layer", name, self._modules)) from None

    def groups(self, *, ignored: Sequence[str] = ()) -> list[ChannelGroup]:
        """Every prunable group rooted at a Conv2d or Linear whose members are not in ``ignored``."""
        ignored_modules = [self.module(n) for n in ignored]
        return [
            self._as_channel_group(g)
            for g in self._dg.get_all_groups(ignored_layers=ignored_modules, root_module_types=(nn.Conv2d, nn.Linear))
        ]

    def group_of(self, root: str) -> ChannelGroup:
        """The current group of ``root``'s output channels (sizes reflect removals made so far)."""
        module = self.module(root)
        pruner = self._dg.get_pruner_of_module(module)
        if pruner is None or pruner.get_out_channels(module) is None:
            raise PruneError(f"layer {root!r} ({type(module).__name__}) has no prunable output channels")
        n = int(pruner.get_out_channels(module))
        return self._as_channel_group(self._dg.get_pruning_group(module, pruner.prune_out_channels, list(range(n))))

    def _as_channel_group(self, group: Any) -> ChannelGroup:
        root_module = group[0].dep.target.module
        members: list[GroupMember] = []
        consumers: list[str] = []
        grouped: list[str] = []
        seen: set[str] = set()
        for item in group:
            dep = item.dep
            module = dep.target.module
            name = self._names.get(module)
            if name is None or not isinstance(module, nn.Conv2d | nn.Linear):
                continue
            if is_grouped_conv(module) and name not in grouped:
                grouped.append(name)
            if self._dg.is_out_channel_pruning_fn(dep.handler):
                if name in seen:
                    continue
                seen.add(name)
                kind = "linear" if isinstance(module, nn.Linear) else "conv"
                if isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.out_channels:
                    kind = "depthwise"
                members.append(
                    GroupMember(name, kind, tuple(int(i) for i in item.idxs), tuple(int(i) for i in item.root_idxs))
                )
            elif name not in consumers:
                consumers.append(name)
        size = int(self._dg.get_out_channels(root_module))
        return ChannelGroup(self._names[root_module], size, tuple(members), tuple(consumers), tuple(grouped))

    def remove_channels(self, root: str, removed: Sequence[int]) -> None:
        """Physically remove ``removed`` root channels from every layer of the root's group."""
        if not removed:
            return
        module = self.module(root)
        pruner = self._dg.get_pruner_of_module(module)
        if pruner is None:
            raise PruneError(f"layer {root!r} ({type(module).__name__}) has no channel pruner")
        n = int(pruner.get_out_channels(module))
        bad = [i for i in removed if not 0 <= int(i) < n]
        if bad:
            raise PlanMismatchError(
                f"plan removes channels {bad[:5]} of {root!r}, which has only {n} output channels: "
                "the plan was made for another model"
            )
        if len(set(removed)) >= n:
            raise PruneError(f"refusing to remove all {n} channels of {root!r}")
        group = self._dg.get_pruning_group(module, pruner.prune_out_channels, sorted(int(i) for i in removed))
        if not self._dg.check_pruning_group(group):
            raise PruneError(f"Torch-Pruning refuses to prune group rooted at {root!r} (it would empty a layer)")
        group.prune()

    def history(self) -> list[list[Any]]:
        """Name-keyed, replayable record of every removal: [module name, is_out_channels, root idxs]."""
        return [[str(n), bool(o), [int(i) for i in idx]] for n, o, idx in self._dg.pruning_history()]

    def replay(self, history: Sequence[Sequence[Any]]) -> None:
        """Redo a recorded history on this (base) model, checking names and sizes first."""
        for entry in history:
            if len(entry) != 3:
                raise PlanMismatchError(f"malformed pruning history entry {entry!r}")
            name, is_out, idxs = entry
            if name not in self._modules:
                raise PlanMismatchError(
                    "the plan does not match this model: " + unknown_name("layer", str(name), self._modules)
                )
            if not is_out:
                raise PlanMismatchError(f"history entry for {name!r} prunes input channels; not supported")
            self.remove_channels(str(name), [int(i) for i in idxs])
