"""Per-group decisions: CoSeP (statistics -> JM profile distances -> k-medoids/MSS/knee) and baselines.

A decision is a plain JSON-able dict recorded in the plan: the group's root and members, the rule that
set the count, the kept root-space indices, and for CoSeP the knee, the MSS curve and any fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from cosep_deploy.errors import PruneError
from cosep_deploy.progress import Progress
from cosep_deploy.prune.coupling import ChannelGroup, CouplingGraph
from cosep_deploy.prune.policy import counts_from_mapping, emp_count, random_channels, round_count, top_l1

__all__ = ["GroupDistances", "baseline_decision", "cosep_at_count", "cosep_decisions", "filter_l1", "group_norms"]


def filter_l1(module: nn.Module) -> np.ndarray:
    """L1 norm of each output filter (a linear layer's neuron: its weight row)."""
    weight = module.weight
    if not isinstance(weight, torch.Tensor):
        raise PruneError(f"{type(module).__name__} has no weight tensor to rank filters by")
    norms: np.ndarray = weight.detach().abs().flatten(1).sum(1).double().cpu().numpy()
    return norms


def _full_members(group: ChannelGroup) -> list[tuple[str, np.ndarray]]:
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
    for name, own in _full_members(group):
        norms += filter_l1(graph.module(name))[own]
    return norms


class GroupDistances:
    """Profile distance matrices of each group's members, combined per group (kept for budget reuse)."""

    def __init__(self) -> None:
        self.matrices: dict[str, np.ndarray] = {}
        self.members: dict[str, list[dict[str, Any]]] = {}


def cosep_decisions(
    model: nn.Module,
    graph: CouplingGraph,
    groups: Sequence[ChannelGroup],
    loader: Iterable[Any],
    cfg: Any,
    prog: Progress,
    *,
    num_classes: int,
    example_inputs: torch.Tensor,
    distances: GroupDistances | None = None,
) -> list[dict[str, Any]]:
    """CoSeP selection for every group from class-conditional statistics collected in one pass."""
    from cosep_deploy import separability as sep

    member_names = sorted({name for g in groups for name, _ in _full_members(g)})
    taps = sep.resolve_taps(model, member_names, point=cfg.hook_point, example_inputs=example_inputs)
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
    store = distances if distances is not None else GroupDistances()
    decisions = []
    with prog.task("selecting channels (JM -> k-medoids -> MSS knee)", total=len(groups)) as task:
        for group in groups:
            mats, used = [], []
            for name, own in _full_members(group):
                st = stats[taps[name]]
                st.check(min_per_class=2)
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
            task.advance()
            if not mats:
                continue
            d = mats[0] if len(mats) == 1 else sep.combine_distances(mats)
            store.matrices[group.root], store.members[group.root] = d, used
            sel = sep.select_channels(
                d, group_norms(graph, group), k_grid=cfg.k_grid, round_to=cfg.round_to, keep=cfg.keep, seed=cfg.seed
            )
            decisions.append(
                {
                    "root": group.root,
                    "size": group.size,
                    "members": used,
                    "consumers": list(group.consumers),
                    "count_rule": "mss_knee",
                    **sel.to_json(),
                }
            )
    return decisions


def baseline_decision(graph: CouplingGraph, group: ChannelGroup, cfg: Any) -> dict[str, Any]:
    """Count by rule (ratio, given counts or EMP), channels by L1 norm or at random."""
    norms = group_norms(graph, group)
    n = group.size
    if cfg.counts is not None:
        rule, base = "given_counts", counts_from_mapping(cfg.counts, group.root, n)
    elif cfg.method == "emp":
        rule, base = f"emp(beta={cfg.emp_beta})", emp_count(norms, beta=cfg.emp_beta)
    else:  # with only a MACs budget, start from the full width and let the budget scale it
        ratio = 1.0 if cfg.ratio is None else cfg.ratio
        rule, base = f"ratio({ratio})", max(1, round(n * ratio))
    n_keep = round_count(base, n, cfg.round_to)
    if cfg.method == "random":
        kept = random_channels(n, n_keep, seed=cfg.seed, salt=group.root)
    else:
        kept = top_l1(norms, n_keep)
    return {
        "root": group.root,
        "size": n,
        "members": [{"layer": m.name} for m in group.members],
        "consumers": list(group.consumers),
        "count_rule": rule,
        "k": base,
        "kept": kept,
        "n_kept": len(kept),
        "n_channels": n,
        "fallback": False,
        "grid": "none",
        "curve": [],
        "round_to": cfg.round_to,
        "keep": "random" if cfg.method == "random" else "max_l1",
        "note": None,
    }


def cosep_at_count(d: np.ndarray, norms: np.ndarray, n_keep: int, *, keep: str, seed: int) -> list[int]:
    """CoSeP's channel choice at a count set from outside (a MACs budget): k-medoids with k = n_keep,
    then one channel per cluster (largest L1 norm, or the medoid)."""
    from cosep_deploy.separability import kmedoids

    n = d.shape[0]
    if n_keep >= n:
        return list(range(n))
    if n_keep <= 1:
        return top_l1(norms, 1)
    res = kmedoids(d, n_keep, seed=seed)
    kept = []
    for c, m in enumerate(res.medoids):
        members = np.flatnonzero(res.labels == c)
        kept.append(int(m) if keep == "medoid" else int(members[np.argmax(norms[members])]))
    return sorted(set(kept))
