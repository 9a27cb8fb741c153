"""``prune``: the prune stage as a straight line.

coupling graph (:mod:`.coupling`) -> prunable groups -> per-group statistics (:mod:`.group_stats`) ->
counts (an allocator, :mod:`.allocate`: the method's own, given counts or a MACs budget) -> per-group
decision (a registered :class:`~cosep_deploy.prune.methods.SelectionMethod`, aligned to ``round_to``) ->
surgery -> optional BatchNorm recalibration -> plan. Statistics come from a class-balanced loader the
caller passes explicitly; nothing is stored on the user's modules (the model is copied).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from cosep_deploy.artifacts import provenance
from cosep_deploy.errors import DataError, PruneError, unknown_name
from cosep_deploy.progress import Progress, resolve_progress
from cosep_deploy.prune.allocate import AllocationContext, allocator_for
from cosep_deploy.prune.config import KNEE_RULES, SCHEDULES, PruneConfig
from cosep_deploy.prune.coupling import ChannelGroup, CouplingGraph
from cosep_deploy.prune.decision import GroupDecision
from cosep_deploy.prune.group_stats import GroupStats, collect_group_stats
from cosep_deploy.prune.macs import count_macs_params
from cosep_deploy.prune.methods import SelectionMethod, get_method, method_names
from cosep_deploy.prune.plan import PruningPlan
from cosep_deploy.prune.stats_loader import statistics_loader
from cosep_deploy.prune.support import refusal_reason
from cosep_deploy.separability.taps import HOOK_POINTS

__all__ = ["HOOK_POINTS", "KNEE_RULES", "METHODS", "SCHEDULES", "PruneConfig", "call_order", "check_loader", "prune"]

METHODS = method_names()  # the built-in methods (the registry may hold more)
BetweenLayers = Callable[[nn.Module, str], Any]


def call_order(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the Conv2d/Linear modules in the order a forward pass calls them."""
    order: list[str] = []
    handles = [
        mod.register_forward_hook(lambda m, i, o, n=name: order.append(n))
        for name, mod in model.named_modules()
        if isinstance(mod, nn.Conv2d | nn.Linear)
    ]
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for h in handles:
            h.remove()
    return order


def check_loader(loader: Iterable[Any], num_classes: int) -> None:
    """The statistics loader must yield (images, labels) and cover every class of the model."""
    from cosep_deploy import distributed as ddist

    seen: set[int] = set()
    for batch in loader:
        if not isinstance(batch, list | tuple) or len(batch) < 2 or not isinstance(batch[1], torch.Tensor):
            raise DataError("the pruning loader must yield (images, labels) batches with integer labels")
        seen.update(int(v) for v in batch[1].unique())
    if ddist.is_distributed():  # each process holds a shard: the classes seen by any of them count
        mask = torch.zeros(num_classes + 1, dtype=torch.int64)  # last slot: any label out of range
        mask[sorted({min(s, num_classes) for s in seen})] = 1
        torch.distributed.all_reduce(mask, op=torch.distributed.ReduceOp.MAX)
        seen = {int(i) for i in torch.nonzero(mask).flatten()}
    missing = sorted(set(range(num_classes)) - seen)
    if missing:
        raise DataError(
            f"the pruning data covers {len(seen)} of the model's {num_classes} classes (missing {missing[:10]}): "
            "class separability needs labelled samples of every class"
        )
    if max(seen, default=0) >= num_classes:
        raise DataError(f"labels go up to {max(seen)} but the model has {num_classes} outputs")


def _prunable_groups(
    graph: CouplingGraph, order: list[str], cfg: PruneConfig, model_name: str
) -> tuple[list[ChannelGroup], list[dict[str, Any]]]:
    """Groups to decide on, in call order; grouped-convolution groups are skipped (and listed)."""
    ignored = [*cfg.ignored_layers, order[-1]]  # the classifier keeps its outputs
    if not cfg.prune_stem:
        ignored.append(order[0])
    position = {name: i for i, name in enumerate(order)}
    candidates = [g for g in graph.groups(ignored=ignored) if g.size >= 2 and g.members]
    skipped = [
        {"root": g.root, "reason": f"contains grouped convolution(s) {list(g.grouped)[:3]}"}
        for g in candidates
        if g.grouped
    ]
    groups = sorted((g for g in candidates if not g.grouped), key=lambda g: position.get(g.root, len(order)))
    if not groups:
        raise PruneError(f"{model_name}: no prunable channel group outside the ignored layers")
    return groups, skipped


@dataclasses.dataclass
class _Stage:
    """The state one prune run threads through its steps."""

    work: nn.Module
    graph: CouplingGraph
    method: SelectionMethod
    cfg: PruneConfig
    loader: Iterable[Any]
    example: torch.Tensor
    classes: int
    prog: Progress
    dense_macs: int
    reuse: dict[str, Any] | None = None
    reused: bool = False

    def _stats(self, groups: list[ChannelGroup]) -> dict[str, GroupStats]:
        """The groups' statistics, taken from ``reuse`` when an earlier one-shot call on the same model and
        data collected them with the same settings; the method shares its per-group selections with every
        call whose selection settings match too."""
        if self.reuse is None or self.cfg.schedule != "oneshot":
            return self._collect(groups)
        stats_key, method_key = _reuse_keys(self.cfg, groups, self.method.needs_distances, self.work)
        cached, states = self.reuse.setdefault("stats", {}), self.reuse.setdefault("methods", {})
        if stats_key in cached:
            self.reused = True
        else:
            cached[stats_key] = self._collect(groups)
        self.method.restore(states.setdefault(method_key, self.method.state()))
        stats: dict[str, GroupStats] = cached[stats_key]
        return stats

    def _collect(self, groups: list[ChannelGroup]) -> dict[str, GroupStats]:
        return collect_group_stats(
            self.work,
            self.graph,
            groups,
            self.loader,
            self.cfg,
            self.prog,
            num_classes=self.classes,
            example_inputs=self.example,
            distances=self.method.needs_distances,
        )

    def decide(self, groups: list[ChannelGroup]) -> tuple[list[GroupDecision], float | None]:
        """Statistics -> counts (allocator) -> one decision per group."""
        stats = self._stats(groups)
        ctx = AllocationContext(self.work, self.example, groups, stats, self.method, self.cfg, self.dense_macs)
        allocation = allocator_for(self.cfg).allocate(ctx)
        decisions = []
        with self.prog.task("selecting channels", total=len(groups)) as task:
            for g in groups:
                decisions.append(
                    self.method.select(g, stats[g.root], allocation.counts[g.root], budget=allocation.factor)
                )
                task.advance()
        return decisions, allocation.factor

    def remove(self, decision: GroupDecision) -> None:
        kept = set(decision.kept)
        self.graph.remove_channels(decision.root, [i for i in range(decision.size) if i not in kept])


# what only sets counts or acts after selection: prunes that differ only in these share statistics and selections
_COUNT_FIELDS = frozenset(
    {"ratio", "counts", "target_macs_ratio", "allocator", "emp_beta", "round_to", "bn_recalibrate"}
)
# what acts on the statistics (the knee rule, which channel a cluster keeps): prunes differing here share statistics
_SELECTION_FIELDS = frozenset({"method", "k_grid", "keep", "knee_rule", "min_keep", "max_keep"})


def _reuse_keys(cfg: PruneConfig, groups: list[ChannelGroup], distances: bool, work: nn.Module) -> tuple[str, str]:
    """(statistics key, method-state key) of a one-shot prune for ``prune(reuse=...)``; the model's weights
    are part of it (a sum per tensor: another model, or this one trained further, is a miss)."""
    settings = {k: v for k, v in cfg.to_json().items() if k not in _COUNT_FIELDS}
    with torch.no_grad():
        weights = [float(t.double().sum()) for t in work.state_dict().values() if t.is_floating_point()]
    model = [(g.root, g.size) for g in groups], weights
    stats = {k: v for k, v in settings.items() if k not in _SELECTION_FIELDS}
    return repr((sorted(stats.items()), model, distances)), repr((sorted(settings.items()), model))


def _run_schedule(
    stage: _Stage, groups: list[ChannelGroup], between_layers: BetweenLayers | None, between: list[Any]
) -> tuple[list[GroupDecision], float | None]:
    if stage.cfg.schedule == "oneshot":
        decisions, factor = stage.decide(groups)
        for d in decisions:
            stage.remove(d)
        return decisions, factor
    decisions = []
    with stage.prog.task("sequential pruning", total=len(groups)) as task:
        for g in groups:
            # statistics and the group are taken from the network as pruned so far (the paper)
            (d,), _ = stage.decide([stage.graph.group_of(g.root)])
            stage.remove(d)
            decisions.append(d)
            if between_layers is not None:
                between.append(between_layers(stage.work, g.root))
            task.advance()
    return decisions, None


def _prepare(model: nn.Module, example_inputs: torch.Tensor, cfg: PruneConfig) -> tuple[nn.Module, list[str]]:
    """A refusal check, an eval-mode copy of ``model`` and its Conv2d/Linear call order."""
    reason = refusal_reason(model)
    if reason is not None:
        raise PruneError(f"cannot prune: {reason}")
    work = copy.deepcopy(model).eval()
    names = dict(work.named_modules())
    for layer in cfg.ignored_layers:
        if layer not in names:
            raise PruneError("ignored_layers: " + unknown_name("layer", layer, names))
    order = call_order(work, example_inputs)
    if not order:
        raise PruneError(f"{type(model).__name__} has no Conv2d or Linear layer to prune")
    return work, order


def _recalibrate(work: nn.Module, loader: Iterable[Any], cfg: PruneConfig) -> dict[str, Any] | None:
    if not cfg.bn_recalibrate:
        return None
    from cosep_deploy.finetune.bn import recalibrate_batchnorm

    return recalibrate_batchnorm(work, loader, max_batches=cfg.bn_recalibrate)


def prune(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    example_inputs: torch.Tensor,
    config: PruneConfig | None = None,
    num_classes: int | None = None,
    base_spec: dict[str, Any] | None = None,
    data_info: dict[str, Any] | None = None,
    between_layers: BetweenLayers | None = None,
    progress: Progress | None = None,
    reuse: dict[str, Any] | None = None,
) -> tuple[nn.Module, PruningPlan]:
    """Prune a copy of ``model`` and return ``(pruned_model, plan)``.

    ``loader`` yields ``(images, labels)``: a class-balanced sample of labelled data (statistics and BN
    recalibration; it is iterated once per statistics pass). A ``DataLoader`` is rebuilt over the same
    samples with the evaluation transforms (random augmentation off, :mod:`.stats_loader`); random
    transforms it cannot replace are refused. ``example_inputs`` is a batch of the input
    shape (tracing, MACs). ``between_layers(model, root)`` runs after each group in the ``sequential``
    schedule (the paper's short fine-tune). ``reuse``: a dict the caller keeps across one-shot calls on the
    *same model and loader* (a MACs-ratio search, a comparison of count rules); the statistics, distances
    and per-group selections of the first call are used again by later calls whose settings differ only in
    how counts are set (ratio, counts, MACs target, allocator, alignment, BN recalibration). The plan
    records ``statistics_reused``.
    """
    cfg = config or PruneConfig()
    start = time.perf_counter()
    work, order = _prepare(model, example_inputs, cfg)
    loader, stats_transforms = statistics_loader(loader)
    input_shape = [int(d) for d in example_inputs.shape[1:]]
    before = count_macs_params(work, input_shape)
    with torch.no_grad():
        classes = num_classes or int(work(example_inputs[:1]).shape[-1])
    method = get_method(cfg.method)(cfg)
    if method.needs_distances:
        check_loader(loader, classes)
    graph = CouplingGraph(work, example_inputs)
    groups, skipped = _prunable_groups(graph, order, cfg, type(model).__name__)
    stage = _Stage(
        work, graph, method, cfg, loader, example_inputs, classes, resolve_progress(progress), before.macs, reuse
    )
    between: list[Any] = []
    decisions, factor = _run_schedule(stage, groups, between_layers, between)
    recal = _recalibrate(work, loader, cfg)
    plan = PruningPlan(
        base_model=base_spec or {},
        input_shape=input_shape,
        method=cfg.method,
        config={
            **cfg.to_json(),
            "budget_factor": factor,
            "num_classes": classes,
            "statistics_transforms": stats_transforms,
            "skipped_groups": skipped,
            "bn_recalibrated": recal,
            "statistics_reused": stage.reused,
            "between_layers": between if between_layers is not None else None,
        },
        groups=[d.to_json() for d in decisions],
        history=graph.history(),
        cost_before=before.to_json(),
        cost_after=count_macs_params(work, input_shape).to_json(),
        data=data_info or {},
        seconds=round(time.perf_counter() - start, 3),
        provenance=provenance(),
    )
    return work.eval(), plan
