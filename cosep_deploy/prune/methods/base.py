"""The selection seam: a method ranks or picks channels within one group; an allocator picks counts.

A :class:`SelectionMethod` answers two questions for one group: how many channels it would keep on its
own (:meth:`~SelectionMethod.own_count`: CoSeP's knee, EMP's effective number, a ratio) and which channels
to keep at a given count (:meth:`~SelectionMethod.choose`). :meth:`~SelectionMethod.select` combines them
with the channel alignment into a :class:`~cosep_deploy.prune.decision.GroupDecision`. A new criterion is
one new module that subclasses :class:`SelectionMethod` and registers itself with
:func:`~cosep_deploy.prune.methods.register_method`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from cosep_deploy.errors import ConfigError
from cosep_deploy.prune.coupling import ChannelGroup
from cosep_deploy.prune.decision import CountChoice, GroupDecision
from cosep_deploy.prune.group_stats import GroupStats
from cosep_deploy.separability.align import align_count, align_kept
from cosep_deploy.separability.selection import norm_order

__all__ = ["Picked", "SelectionMethod", "ratio_count"]

Picked = tuple[tuple[int, ...], dict[str, Any]]  # channels, extra record fields (keep, medoids)


def ratio_count(cfg: Any, n: int) -> CountChoice:
    """A count from the config's keep ratio; with only a MACs budget, the full width (the budget scales it)."""
    ratio = 1.0 if cfg.ratio is None else cfg.ratio
    return CountChoice(max(1, round(n * ratio)), f"ratio({ratio})")


class SelectionMethod(ABC):
    """One way of choosing channels within a coupled group. Subclasses set ``name`` and implement
    :meth:`own_count` and :meth:`choose`."""

    name: ClassVar[str]
    needs_distances: ClassVar[bool] = False  # class-conditional statistics and JM profile distances
    needs_count: ClassVar[bool] = False  # no count of its own: needs a ratio, counts or a budget

    def __init__(self, config: Any) -> None:
        self.config = config

    @classmethod
    def check_config(cls, config: Any) -> None:
        """Refuse configurations the method cannot run with (called from the config's validation)."""
        if cls.needs_count and config.ratio is None and config.counts is None and config.target_macs_ratio is None:
            raise ConfigError(f"method {cls.name!r} needs a keep ratio, per-group counts or a target MACs ratio")

    @abstractmethod
    def own_count(self, group: ChannelGroup, stats: GroupStats) -> CountChoice:
        """How many channels the method itself would keep in ``group``."""

    @abstractmethod
    def choose(self, group: ChannelGroup, stats: GroupStats, count: int) -> Picked:
        """Which ``count`` channels (root space) to keep."""

    def state(self) -> dict[str, Any]:
        """What the method computes from the statistics alone (not from counts), live: ``prune(reuse=...)``
        keeps it, and what this method adds to it later is there for the next call."""
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Work on a :meth:`state` of the same statistics and settings (shared, not copied)."""
        del state  # nothing to share by default

    def fill_order(self, group: ChannelGroup, stats: GroupStats) -> np.ndarray:
        """Channels in the order alignment adds them (and drops them in reverse): largest L1 first."""
        return norm_order(stats.norms)

    def select(
        self, group: ChannelGroup, stats: GroupStats, count: CountChoice | None = None, *, budget: float | None = None
    ) -> GroupDecision:
        """The decision for ``group`` at ``count`` (default: the method's own), aligned to ``round_to``."""
        own = self.own_count(group, stats) if count is None or self.needs_distances else None
        choice = count if count is not None else own
        assert choice is not None
        n_choose = max(1, min(group.size, choice.count))
        picked, extra = self.choose(group, stats, n_choose)
        alignment = align_count(len(picked), group.size, self.config.round_to)
        kept = align_kept(picked, alignment.aligned, self.fill_order(group, stats))
        return GroupDecision(
            root=group.root,
            size=group.size,
            method=self.name,
            choice=choice,
            picked=picked,
            kept=kept,
            alignment=alignment,
            scores=stats.norms,
            members=tuple(stats.members),
            consumers=group.consumers,
            own=own if count is not None else None,
            budget_factor=budget,
            **extra,
        )
