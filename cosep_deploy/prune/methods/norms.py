"""Per-channel-score baselines: L1 filter norm (at a ratio, given counts or a budget), uniform ratio,
EMP's effective number of channels over the L1 norms, and random channels."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from cosep_deploy.errors import ConfigError
from cosep_deploy.prune.coupling import ChannelGroup
from cosep_deploy.prune.decision import CountChoice
from cosep_deploy.prune.group_stats import GroupStats
from cosep_deploy.prune.methods.base import Picked, SelectionMethod, ratio_count
from cosep_deploy.prune.policy import emp_count, random_channels, random_order, top_l1

__all__ = ["EmpMethod", "L1Method", "RandomMethod", "UniformMethod"]


class L1Method(SelectionMethod):
    """The channels of largest L1 filter norm."""

    name: ClassVar[str] = "l1"
    needs_count: ClassVar[bool] = True

    def own_count(self, group: ChannelGroup, stats: GroupStats) -> CountChoice:
        return ratio_count(self.config, group.size)

    def choose(self, group: ChannelGroup, stats: GroupStats, count: int) -> Picked:
        return tuple(top_l1(stats.norms, count)), {"keep": "max_l1"}


class UniformMethod(L1Method):
    """The same keep ratio in every group, channels by L1 norm."""

    name: ClassVar[str] = "uniform"

    @classmethod
    def check_config(cls, config: Any) -> None:
        if config.counts is not None:
            raise ConfigError("method 'uniform' keeps the same ratio everywhere: give a ratio, not counts")
        super().check_config(config)


class EmpMethod(L1Method):
    """EMP: keep floor(beta * N_eff) channels, N_eff the inverse Simpson index of the L1 norms."""

    name: ClassVar[str] = "emp"
    needs_count: ClassVar[bool] = False

    def own_count(self, group: ChannelGroup, stats: GroupStats) -> CountChoice:
        beta = self.config.emp_beta
        return CountChoice(emp_count(stats.norms, beta=beta), f"emp(beta={beta})")


class RandomMethod(L1Method):
    """Channels drawn uniformly at random (seeded per group); alignment fills at random too."""

    name: ClassVar[str] = "random"

    def choose(self, group: ChannelGroup, stats: GroupStats, count: int) -> Picked:
        return tuple(random_channels(group.size, count, seed=self.config.seed, salt=group.root)), {"keep": "random"}

    def fill_order(self, group: ChannelGroup, stats: GroupStats) -> np.ndarray:
        return random_order(group.size, seed=self.config.seed, salt=group.root)
