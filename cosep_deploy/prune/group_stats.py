"""What a selection method sees of a group: its producers' L1 filter norms and, for the class-separability
methods, the group's JM profile distance matrix (members' matrices combined).

Statistics come from one pass of the caller's labelled loader over the (copied) model; nothing is stored
on the user's modules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from cosep_deploy.errors import PruneError
from cosep_deploy.progress import Progress
from cosep_deploy.prune.coupling import ChannelGroup, CouplingGraph

__all__ = ["GroupStats", "collect_group_stats", "filter_l1", "full_members", "group_norms"]


@dataclasses.dataclass
class GroupStats:
    """Per-group inputs of a selection: L1 norms (root order), distances (or None), member records."""

    norms: np.ndarray
    distances: np.ndarray | None = None
    members: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def filter_l1(module: nn.Module) -> np.ndarray:
    """L1 norm of each output filter (a linear layer's neuron: its weight row)."""
    weight = module.weight
    if not isinstance(weight, torch.Tensor):
        raise PruneError(f"{type(module).__name__} has no weight tensor to rank filters by")
    norms: np.ndarray = weight.detach().abs().flatten(1).sum(1).double().cpu().numpy()
    return norms


def full_members(group: ChannelGroup) -> list[tuple[str, np.ndarray]]:
    """Members covering the whole root space, with the member channel of each root channel."""
    out = []
    for member in group.members:
        if len(member.root_idxs) != group.size:
            continue  # a member that covers part of the root space (a concat input) only follows
        order = np.argsort(np.asarray(member.root_idxs))
        out.append((member.name, np.asarray(member.idxs)[order]))
    return out


def group_norms(graph: CouplingGraph, group: ChannelGroup) -> np.ndarray:
    """Summed L1 filter norms of the group's producers, in root channel order."""
    norms = np.zeros(group.size)
    for name, own in full_members(group):
        norms += filter_l1(graph.module(name))[own]
    return norms


def _member_distances(stats: Any, taps: Any, group: ChannelGroup, cfg: Any) -> tuple[list[np.ndarray], list[Any]]:
    from cosep_deploy import separability as sep

    mats, used = [], []
    seen: set[str] = set()
    for name, own in full_members(group):
        if taps[name] in seen:
            continue  # members hooked at one point (after a residual add) count once
        seen.add(taps[name])
        st = stats[taps[name]]
        st.check(min_per_class=2)
        if st.mean.shape[1] <= int(own.max()):
            raise PruneError(
                f"tap {taps[name]!r} of {name!r} has {st.mean.shape[1]} channels, fewer than the layer's outputs "
                "(a channels-last tensor?): use --hook-point bn or conv for this model"
            )
        res = sep.profile_distances(st.mean[:, own], st.var[:, own], pair_budget=cfg.pair_budget, seed=cfg.seed)
        mats.append(res.distances)
        used.append(
            {
                "layer": name,
                "tap": taps[name],
                "tap_note": taps.notes.get(name),
                "pairs_used": res.pairs_used,
                "pairs_total": res.pairs_total,
                "sampled": res.sampled,
            }
        )
    return mats, used


def collect_group_stats(
    model: nn.Module,
    graph: CouplingGraph,
    groups: Sequence[ChannelGroup],
    loader: Iterable[Any] | None,
    cfg: Any,
    prog: Progress,
    *,
    num_classes: int,
    example_inputs: torch.Tensor,
    distances: bool,
) -> dict[str, GroupStats]:
    """Norms for every group; with ``distances``, class statistics from one pass and JM profile distances."""
    out = {g.root: GroupStats(group_norms(graph, g), members=[{"layer": m.name} for m in g.members]) for g in groups}
    if not distances:
        return out
    from cosep_deploy import separability as sep

    assert loader is not None
    names = sorted({name for g in groups for name, _ in full_members(g)})
    taps = sep.resolve_taps(model, names, point=cfg.hook_point, example_inputs=example_inputs)
    with prog.task("collecting class statistics", total=None) as task:
        stats = sep.collect_class_stats(
            model,
            loader,
            sorted(set(taps.values())),
            spatial=cfg.spatial,
            num_classes=num_classes,
            progress=lambda done, total: task.advance(),
        )
    for st in stats.values():
        st.all_reduce()  # under torchrun: sums over every process's shard (no-op otherwise)
    for group in groups:
        mats, used = _member_distances(stats, taps, group, cfg)
        if mats:
            d = mats[0] if len(mats) == 1 else sep.combine_distances(mats)
            out[group.root].distances, out[group.root].members = d, used
    return out
