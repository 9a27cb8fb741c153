"""``prune``: class-separability channel selection per coupled group, then physical removal.

Coupling (which channels go together) comes from :mod:`.coupling`, scoring from
:mod:`cosep_deploy.separability` (statistics -> JM profile distances -> k-medoids/MSS/knee), and the
policy (rounding, ignored layers, stem) from :class:`PruneConfig`. Statistics are computed on the dense
network (``oneshot``) over a class-balanced loader the caller provides explicitly.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..artifacts import provenance
from ..errors import ConfigError, PruneError, unknown_name
from ..progress import Progress, resolve_progress
from .coupling import ChannelGroup, CouplingGraph
from .macs import count_macs_params
from .plan import PruningPlan

__all__ = ["HOOK_POINTS", "METHODS", "PruneConfig", "prune"]

METHODS = ("cosep",)
HOOK_POINTS = ("conv", "bn", "act")
SCHEDULES = ("oneshot",)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PruneConfig:
    """Every pruning parameter; all of it is recorded in the plan."""

    method: str = "cosep"
    schedule: str = "oneshot"
    hook_point: str = "bn"  # which tensor is summarised: conv output, after BN (default), after activation
    spatial: str = "gap"  # gap | pool:S | pixel
    images_per_class: int = 32
    pair_budget: int | None = None
    k_grid: str = "auto"  # auto | all
    keep: str = "max_l1"  # max_l1 (paper) | medoid
    round_to: int = 1
    seed: int = 0
    ignored_layers: tuple[str, ...] = ()
    prune_stem: bool = False  # the paper leaves the stem (first conv) and the classifier alone

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(unknown_name("pruning method", self.method, METHODS))
        if self.schedule not in SCHEDULES:
            raise ConfigError(unknown_name("schedule", self.schedule, SCHEDULES))
        if self.hook_point not in HOOK_POINTS:
            raise ConfigError(unknown_name("hook point", self.hook_point, HOOK_POINTS))
        if self.round_to < 1:
            raise ConfigError(f"round_to must be >= 1, got {self.round_to}")
        if self.images_per_class < 2:
            raise ConfigError(f"images_per_class must be >= 2, got {self.images_per_class}")
        if self.k_grid not in ("auto", "all"):
            raise ConfigError(unknown_name("k grid", self.k_grid, ("auto", "all")))
        if self.keep not in ("max_l1", "medoid"):
            raise ConfigError(unknown_name("keep rule", self.keep, ("max_l1", "medoid")))

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ignored_layers"] = list(self.ignored_layers)
        return d


def _call_order(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the Conv2d/Linear modules in the order a forward pass calls them."""
    order: list[str] = []
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d | nn.Linear):
            handles.append(mod.register_forward_hook(lambda m, i, o, n=name: order.append(n)))
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for h in handles:
            h.remove()
    return order


def _filter_l1(module: nn.Module) -> np.ndarray:
    """L1 norm of each output filter (a linear layer's neuron: its weight row)."""
    weight = module.weight
    if not isinstance(weight, torch.Tensor):
        raise PruneError(f"{type(module).__name__} has no weight tensor to rank filters by")
    norms: np.ndarray = weight.detach().abs().flatten(1).sum(1).double().cpu().numpy()
    return norms


def _select_groups(
    model: nn.Module,
    graph: CouplingGraph,
    groups: Sequence[ChannelGroup],
    loader: Iterable[Any],
    cfg: PruneConfig,
    prog: Progress,
) -> list[dict[str, Any]]:
    from .. import separability as sep

    member_names = sorted({m.name for g in groups for m in g.members})
    taps = sep.resolve_taps(model, member_names, point=cfg.hook_point)
    with prog.task("collecting class statistics", total=None) as task:
        stats = sep.collect_class_stats(
            model, loader, sorted(set(taps.values())), spatial=cfg.spatial, progress=lambda d, t: task.advance()
        )
    decisions = []
    with prog.task("selecting channels (JM -> k-medoids -> MSS knee)", total=len(groups)) as task:
        for group in groups:
            distances, norms, used = [], np.zeros(group.size), []
            for member in group.members:
                if len(member.root_idxs) != group.size:
                    continue  # a member that covers part of the root space (concat) only follows
                order = np.argsort(np.asarray(member.root_idxs))
                own = np.asarray(member.idxs)[order]  # member channel for root channel 0..size-1
                st = stats[taps[member.name]]
                st.check(min_per_class=2)
                mean, var = st.mean, st.var
                res = sep.profile_distances(mean[:, own], var[:, own], pair_budget=cfg.pair_budget, seed=cfg.seed)
                distances.append(res.distances)
                norms += _filter_l1(graph.module(member.name))[own]
                used.append(
                    {
                        "layer": member.name,
                        "tap": taps[member.name],
                        "pairs_used": res.pairs_used,
                        "pairs_total": res.pairs_total,
                        "sampled": res.sampled,
                    }
                )
            if not distances:
                continue
            D = distances[0] if len(distances) == 1 else sep.combine_distances(distances)
            sel = sep.select_channels(D, norms, k_grid=cfg.k_grid, round_to=cfg.round_to, keep=cfg.keep, seed=cfg.seed)
            decisions.append(
                {
                    "root": group.root,
                    "size": group.size,
                    "members": used,
                    "consumers": list(group.consumers),
                    **sel.to_json(),
                }
            )
            task.advance()
    return decisions


def prune(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    example_inputs: torch.Tensor,
    config: PruneConfig | None = None,
    base_spec: dict[str, Any] | None = None,
    data_info: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> tuple[nn.Module, PruningPlan]:
    """Prune a copy of ``model`` by class separability and return ``(pruned_model, plan)``.

    ``loader`` yields ``(images, labels)``: a class-balanced sample of labelled data (statistics only).
    ``example_inputs`` is one batch of the model's input shape (tracing and MACs).
    """
    cfg = config or PruneConfig()
    prog = resolve_progress(progress)
    start = time.perf_counter()
    work = copy.deepcopy(model).eval()
    input_shape = [int(d) for d in example_inputs.shape[1:]]
    before = count_macs_params(work, input_shape)
    names = dict(work.named_modules())
    for layer in cfg.ignored_layers:
        if layer not in names:
            raise PruneError("ignored_layers: " + unknown_name("layer", layer, names))
    order = _call_order(work, example_inputs)
    if not order:
        raise PruneError(f"{type(model).__name__} has no Conv2d or Linear layer to prune")
    ignored = [*cfg.ignored_layers, order[-1]]  # the classifier keeps its outputs
    if not cfg.prune_stem:
        ignored.append(order[0])
    graph = CouplingGraph(work, example_inputs)
    groups = [g for g in graph.groups(ignored=ignored) if g.size >= 2 and g.members]
    if not groups:
        raise PruneError(f"{type(model).__name__}: no prunable channel group outside the ignored layers")
    decisions = _select_groups(work, graph, groups, loader, cfg, prog)
    for d in decisions:
        kept = set(d["kept"])
        graph.remove_channels(d["root"], [i for i in range(d["size"]) if i not in kept])
    after = count_macs_params(work, input_shape)
    plan = PruningPlan(
        base_model=base_spec or {},
        input_shape=input_shape,
        method=cfg.method,
        config=cfg.to_json(),
        groups=decisions,
        history=graph.history(),
        cost_before=before.to_json(),
        cost_after=after.to_json(),
        data=data_info or {},
        seconds=round(time.perf_counter() - start, 3),
        provenance=provenance(),
    )
    return work.eval(), plan
