"""CoSeP: JM profile distances -> k-medoids for every k -> MSS curve -> knee rule -> one channel per
cluster. Also the comparison variant that keeps the clusters' best channel but draws the clusters at
random (does the clustering matter?)."""

from __future__ import annotations

import zlib
from typing import Any, ClassVar

import numpy as np

from cosep_deploy.errors import PruneError
from cosep_deploy.prune.coupling import ChannelGroup
from cosep_deploy.prune.decision import CountChoice
from cosep_deploy.prune.group_stats import GroupStats
from cosep_deploy.prune.methods.base import Picked, SelectionMethod, ratio_count
from cosep_deploy.separability.knee import KneeBounds
from cosep_deploy.separability.selection import ChannelSelection

__all__ = ["CosepMethod", "RandomClustersMethod"]


def _distances(stats: GroupStats, root: str) -> np.ndarray:
    if stats.distances is None:
        raise PruneError(f"group {root!r}: no profile distances (no member covers the whole group)")
    return stats.distances


class CosepMethod(SelectionMethod):
    """The count is the knee of the MSS curve; the channels, one per k-medoids cluster (largest L1 norm,
    or the medoid with ``keep="medoid"``). At a count set from outside (a MACs budget, given counts),
    k-medoids at that count."""

    name: ClassVar[str] = "cosep"
    needs_distances: ClassVar[bool] = True

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._selections: dict[str, ChannelSelection] = {}

    def _selection(self, group: ChannelGroup, stats: GroupStats) -> ChannelSelection:
        from cosep_deploy.separability import select_channels

        cfg = self.config
        if group.root not in self._selections or self._selections[group.root].n_channels != group.size:
            self._selections[group.root] = select_channels(
                _distances(stats, group.root),
                stats.norms,
                k_grid=cfg.k_grid,
                keep=cfg.keep,
                seed=cfg.seed,
                knee_rule=cfg.knee_rule,
                bounds=KneeBounds(min_keep=cfg.min_keep, max_keep=cfg.max_keep),
            )
        return self._selections[group.root]

    def state(self) -> dict[str, Any]:
        return {"selections": self._selections}  # frozen selections, one per group: safe to share

    def restore(self, state: dict[str, Any]) -> None:
        self._selections = state["selections"]

    def own_count(self, group: ChannelGroup, stats: GroupStats) -> CountChoice:
        sel = self._selection(group, stats)
        return CountChoice(len(sel.picked), "mss_knee", sel.knee, sel.curve, sel.grid, sel.note)

    def choose(self, group: ChannelGroup, stats: GroupStats, count: int) -> Picked:
        from cosep_deploy.separability import kmedoids

        sel = self._selection(group, stats)
        if count == len(sel.picked):
            return sel.picked, {"keep": self.config.keep, "medoids": sel.medoids}
        d = _distances(stats, group.root)
        if count >= group.size:
            return tuple(range(group.size)), {"keep": self.config.keep}
        res = kmedoids(d, count, seed=self.config.seed)
        kept = []
        for c, m in enumerate(res.medoids):
            members = np.flatnonzero(res.labels == c)
            best = int(m) if self.config.keep == "medoid" else int(members[np.argmax(stats.norms[members])])
            kept.append(best)
        medoids = tuple(int(m) for m in res.medoids)
        return tuple(sorted(set(kept))), {"keep": self.config.keep, "medoids": medoids}


class RandomClustersMethod(SelectionMethod):
    """Control for CoSeP: channels split into ``count`` random clusters of near-equal size, the largest
    L1 channel of each kept. Same count rule as the norm baselines (ratio, given counts or a budget)."""

    name: ClassVar[str] = "random_clusters"
    needs_count: ClassVar[bool] = True

    def own_count(self, group: ChannelGroup, stats: GroupStats) -> CountChoice:
        return ratio_count(self.config, group.size)

    def choose(self, group: ChannelGroup, stats: GroupStats, count: int) -> Picked:
        rng = np.random.default_rng([self.config.seed, zlib.crc32(group.root.encode()), 1])
        perm = rng.permutation(group.size)
        kept = [int(part[np.argmax(stats.norms[part])]) for part in np.array_split(perm, count) if part.size]
        return tuple(sorted(kept)), {"keep": "random_clusters+max_l1"}
