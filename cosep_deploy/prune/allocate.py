"""Counts under a budget: the second seam of the prune stage. An allocator decides how many channels each
group keeps (the method's own count, counts given from outside, or the method's counts scaled by one global
factor until a MACs budget is met); the method then picks that many channels. A latency-targeted
allocator is one more :class:`CountAllocator` registered with :func:`register_allocator`.
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from cosep_deploy.errors import ConfigError, PruneError, unknown_name
from cosep_deploy.prune.coupling import ChannelGroup, CouplingGraph
from cosep_deploy.prune.decision import CountChoice
from cosep_deploy.prune.group_stats import GroupStats, group_norms
from cosep_deploy.prune.macs import count_macs_params
from cosep_deploy.prune.methods.base import SelectionMethod
from cosep_deploy.prune.policy import counts_from_mapping, top_l1
from cosep_deploy.separability.align import align_count

__all__ = [
    "Allocation",
    "AllocationContext",
    "CountAllocator",
    "allocator_for",
    "allocator_names",
    "register_allocator",
]


@dataclasses.dataclass(frozen=True)
class AllocationContext:
    """What an allocator may look at: the working model, its groups and their statistics, the method."""

    model: nn.Module
    example_inputs: torch.Tensor
    groups: Sequence[ChannelGroup]
    stats: Mapping[str, GroupStats]
    method: SelectionMethod
    config: Any
    dense_macs: int


@dataclasses.dataclass(frozen=True)
class Allocation:
    """Per-group counts (None: the method's own count) and the global factor when one was used."""

    counts: dict[str, CountChoice | None]
    factor: float | None = None


class CountAllocator(ABC):
    name: ClassVar[str]

    @abstractmethod
    def allocate(self, ctx: AllocationContext) -> Allocation:
        """How many channels each group of ``ctx.groups`` keeps."""


_ALLOCATORS: dict[str, type[CountAllocator]] = {}
A = TypeVar("A", bound=type[CountAllocator])


def register_allocator(cls: A) -> A:
    _ALLOCATORS[cls.name] = cls
    return cls


def allocator_names() -> tuple[str, ...]:
    return tuple(sorted(_ALLOCATORS))


def allocator_for(config: Any) -> CountAllocator:
    """The config's allocator: explicit ``allocator``, else given counts, a MACs budget, or the method's own."""
    name = config.allocator
    if name is None:
        name = "counts" if config.counts is not None else "macs" if config.target_macs_ratio is not None else "own"
    if name not in _ALLOCATORS:
        raise ConfigError(unknown_name("allocator", name, _ALLOCATORS))
    return _ALLOCATORS[name]()


@register_allocator
class OwnCounts(CountAllocator):
    """Every group keeps what the method decides (CoSeP's knee, EMP's N_eff, the keep ratio)."""

    name: ClassVar[str] = "own"

    def allocate(self, ctx: AllocationContext) -> Allocation:
        return Allocation({g.root: None for g in ctx.groups})


@register_allocator
class GivenCounts(CountAllocator):
    """Counts from the config (e.g. CoSeP's, so a baseline keeps exactly as many channels per group)."""

    name: ClassVar[str] = "counts"

    def allocate(self, ctx: AllocationContext) -> Allocation:
        counts = ctx.config.counts
        if counts is None:
            raise ConfigError("allocator 'counts' needs per-group counts")
        return Allocation(
            {g.root: CountChoice(counts_from_mapping(counts, g.root, g.size), "given_counts") for g in ctx.groups}
        )


def _scaled(base: int, n: int, factor: float, round_to: int) -> int:
    count = max(1, min(n, round(base * factor)))
    return align_count(count, n, round_to).aligned


def _macs_ratio_at(ctx: AllocationContext, base: Mapping[str, int], factor: float) -> float:
    """Dense/pruned MACs when every group keeps its scaled count (top-L1 channels on a copy: MACs depend
    only on the counts)."""
    trial = copy.deepcopy(ctx.model)
    graph = CouplingGraph(trial, ctx.example_inputs)
    for g in ctx.groups:
        n_keep = _scaled(base[g.root], g.size, factor, ctx.config.round_to)
        kept = set(top_l1(group_norms(graph, graph.group_of(g.root)), n_keep))
        graph.remove_channels(g.root, [i for i in range(g.size) if i not in kept])
    shape = [int(d) for d in ctx.example_inputs.shape[1:]]
    return ctx.dense_macs / max(count_macs_params(trial, shape).macs, 1)


def _bisect(ratio_at: Callable[[float], float], target: float, hi: float) -> float:
    lo = 0.0
    for _ in range(12):  # counts are integers: 12 halvings resolve the factor well below one channel
        mid = (lo + hi) / 2
        got = ratio_at(mid)
        if got >= target:
            lo = mid
            if got <= target * 1.01:
                break  # within 1% of the budget: close enough, and each trial is a prune
        else:
            hi = mid
    return lo


@register_allocator
class MacsBudget(CountAllocator):
    """The method's own counts scaled by one global factor until dense/pruned MACs reaches the target."""

    name: ClassVar[str] = "macs"

    def allocate(self, ctx: AllocationContext) -> Allocation:
        target = ctx.config.target_macs_ratio
        if target is None:
            raise ConfigError("allocator 'macs' needs a target MACs ratio")
        own = {g.root: ctx.method.own_count(g, ctx.stats[g.root]) for g in ctx.groups}
        base = {r: max(c.count, 1) for r, c in own.items()}
        floor_ratio = _macs_ratio_at(ctx, base, 1e-9)
        if floor_ratio < target:
            raise PruneError(
                f"target MACs ratio {target} is out of reach: keeping one channel per prunable group "
                f"gives {floor_ratio:.2f}x (the ignored layers and the stem keep the rest)"
            )
        hi = max(g.size / base[g.root] for g in ctx.groups)
        factor = _bisect(lambda f: _macs_ratio_at(ctx, base, f), target, hi)
        counts: dict[str, CountChoice | None] = {}
        for g in ctx.groups:
            n = max(1, min(g.size, round(base[g.root] * factor)))
            counts[g.root] = CountChoice(n, f"macs_budget({own[g.root].rule} x {factor:.4f})")
        return Allocation(counts, factor)
