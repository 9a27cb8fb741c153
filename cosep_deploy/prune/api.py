"""``prune``: per-group channel selection (CoSeP or a baseline), then physical removal.

Coupling (which channels go together) comes from :mod:`.coupling`, scoring from
:mod:`cosep_deploy.separability` (via :mod:`.decide`), and the policy (counts, rounding, ignored layers,
budget) from :class:`PruneConfig` and :mod:`.policy`. Statistics come from a class-balanced loader the
caller passes explicitly; nothing is stored on the user's modules (the model is copied).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from cosep_deploy.artifacts import provenance
from cosep_deploy.errors import ConfigError, DataError, PruneError, unknown_name
from cosep_deploy.progress import Progress, resolve_progress
from cosep_deploy.prune.coupling import ChannelGroup, CouplingGraph
from cosep_deploy.prune.decide import GroupDistances, baseline_decision, cosep_at_count, cosep_decisions, group_norms
from cosep_deploy.prune.macs import count_macs_params
from cosep_deploy.prune.plan import PruningPlan
from cosep_deploy.prune.policy import scaled_count, top_l1

__all__ = ["HOOK_POINTS", "METHODS", "SCHEDULES", "PruneConfig", "prune"]

METHODS = ("cosep", "l1", "random", "uniform", "emp")
HOOK_POINTS = ("conv", "bn", "act")
SCHEDULES = ("oneshot", "sequential")
BetweenLayers = Callable[[nn.Module, str], None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PruneConfig:
    """Every pruning parameter; all of it is recorded in the plan.

    ``ratio`` (keep fraction) or ``counts`` (kept channels per group root, e.g. CoSeP's, for a matched
    comparison) set the counts of ``l1``/``random``/``uniform``; ``emp`` uses EMP's N_eff with ``emp_beta``.
    ``target_macs_ratio`` (dense MACs / pruned MACs) scales every group's count by one global factor.
    """

    method: str = "cosep"
    schedule: str = "oneshot"
    hook_point: str = "bn"
    spatial: str = "gap"
    images_per_class: int = 32
    pair_budget: int | None = None
    k_grid: str = "auto"
    keep: str = "max_l1"
    round_to: int = 1
    seed: int = 0
    ignored_layers: tuple[str, ...] = ()
    prune_stem: bool = False  # the paper leaves the stem (first conv) and the classifier alone
    ratio: float | None = None
    counts: Mapping[str, int] | None = None
    emp_beta: float = 1.0
    target_macs_ratio: float | None = None

    def __post_init__(self) -> None:
        choices = {
            "method": METHODS,
            "schedule": SCHEDULES,
            "hook_point": HOOK_POINTS,
            "k_grid": ("auto", "all"),
            "keep": ("max_l1", "medoid"),
        }
        for field, valid in choices.items():
            if getattr(self, field) not in valid:
                raise ConfigError(unknown_name(field.replace("_", " "), getattr(self, field), valid))
        if self.round_to < 1:
            raise ConfigError(f"round_to must be >= 1, got {self.round_to}")
        if self.images_per_class < 2:
            raise ConfigError(f"images_per_class must be >= 2, got {self.images_per_class}")
        if self.ratio is not None and not 0 < self.ratio <= 1:
            raise ConfigError(f"keep ratio must be in (0, 1], got {self.ratio}")
        if self.target_macs_ratio is not None and self.target_macs_ratio <= 1:
            raise ConfigError(f"target MACs ratio (dense / pruned) must be > 1, got {self.target_macs_ratio}")
        needs_count = self.method in ("l1", "random", "uniform")
        if needs_count and self.ratio is None and self.counts is None and self.target_macs_ratio is None:
            raise ConfigError(f"method {self.method!r} needs a keep ratio, per-group counts or a target MACs ratio")
        if self.method == "uniform" and self.counts is not None:
            raise ConfigError("method 'uniform' keeps the same ratio everywhere: give a ratio, not counts")
        if self.schedule == "sequential" and self.target_macs_ratio is not None:
            raise ConfigError("a global MACs budget needs schedule 'oneshot' (all counts are scaled together)")

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ignored_layers"] = list(self.ignored_layers)
        d["counts"] = dict(self.counts) if self.counts is not None else None
        return d


def _call_order(model: nn.Module, example: torch.Tensor) -> list[str]:
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


def _check_loader(loader: Iterable[Any], num_classes: int) -> None:
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


def _budget_counts(
    work: nn.Module, example: torch.Tensor, decisions: list[dict[str, Any]], cfg: PruneConfig, dense_macs: int
) -> float:
    """Scale every group's count by one factor so dense/pruned MACs reaches ``target_macs_ratio``.

    MACs depend only on counts, so trial prunes keep top-L1 channels on a copy; bisection on the factor.
    """
    assert cfg.target_macs_ratio is not None
    input_shape = [int(d) for d in example.shape[1:]]
    base = {d["root"]: max(d["k"], 1) for d in decisions}
    sizes = {d["root"]: d["size"] for d in decisions}

    def ratio_at(factor: float) -> float:
        trial_model = copy.deepcopy(work)
        trial_graph = CouplingGraph(trial_model, example)
        for d in decisions:
            n_keep = scaled_count(base[d["root"]], sizes[d["root"]], factor, cfg.round_to)
            norms = group_norms(trial_graph, trial_graph.group_of(d["root"]))
            kept = set(top_l1(norms, n_keep))
            trial_graph.remove_channels(d["root"], [i for i in range(d["size"]) if i not in kept])
        return dense_macs / max(count_macs_params(trial_model, input_shape).macs, 1)

    lo, hi = 0.0, max(sizes[r] / base[r] for r in base)
    floor_ratio = ratio_at(1e-9)
    if floor_ratio < cfg.target_macs_ratio:
        raise PruneError(
            f"target MACs ratio {cfg.target_macs_ratio} is out of reach: keeping one channel per prunable group "
            f"gives {floor_ratio:.2f}x (the ignored layers and the stem keep the rest)"
        )
    for _ in range(12):  # counts are integers: 12 halvings resolve the factor well below one channel
        mid = (lo + hi) / 2
        got = ratio_at(mid)
        if got >= cfg.target_macs_ratio:
            lo = mid
            if got <= cfg.target_macs_ratio * 1.01:
                break  # within 1% of the budget: close enough, and each trial is a prune
        else:
            hi = mid
    return lo


def _remove_unkept(graph: CouplingGraph, decision: dict[str, Any]) -> None:
    kept = set(decision["kept"])
    graph.remove_channels(decision["root"], [i for i in range(decision["size"]) if i not in kept])


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
) -> tuple[nn.Module, PruningPlan]:
    """Prune a copy of ``model`` and return ``(pruned_model, plan)``.

    ``loader`` yields ``(images, labels)``: a class-balanced sample of labelled data (statistics only; it
    is iterated once per statistics pass). ``example_inputs`` is a batch of the input shape (tracing,
    MACs). ``between_layers(model, root)`` runs after each group in the ``sequential`` schedule (the
    paper's short fine-tune).
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
    with torch.no_grad():
        n_out = int(work(example_inputs[:1]).shape[-1])
    classes = num_classes or n_out
    if cfg.method == "cosep":
        _check_loader(loader, classes)
    ignored = [*cfg.ignored_layers, order[-1]]  # the classifier keeps its outputs
    if not cfg.prune_stem:
        ignored.append(order[0])
    graph = CouplingGraph(work, example_inputs)
    position = {name: i for i, name in enumerate(order)}
    candidates = [g for g in graph.groups(ignored=ignored) if g.size >= 2 and g.members]
    skipped = [
        {"root": g.root, "reason": f"contains grouped convolution(s) {list(g.grouped)[:3]}"}
        for g in candidates
        if g.grouped
    ]
    groups = sorted((g for g in candidates if not g.grouped), key=lambda g: position.get(g.root, len(order)))
    if not groups:
        raise PruneError(f"{type(model).__name__}: no prunable channel group outside the ignored layers")
    dists = GroupDistances()

    def decide(batch: list[ChannelGroup]) -> list[dict[str, Any]]:
        if cfg.method == "cosep":
            return cosep_decisions(
                work,
                graph,
                batch,
                loader,
                cfg,
                prog,
                num_classes=classes,
                example_inputs=example_inputs,
                distances=dists,
            )
        return [baseline_decision(graph, g, cfg) for g in batch]

    factor = None
    decisions: list[dict[str, Any]] = []
    if cfg.schedule == "oneshot":
        decisions = decide(groups)
        if cfg.target_macs_ratio is not None:
            factor = _budget_counts(work, example_inputs, decisions, cfg, before.macs)
            for d in decisions:
                n_keep = scaled_count(max(d["k"], 1), d["size"], factor, cfg.round_to)
                g = graph.group_of(d["root"])
                norms = group_norms(graph, g)
                if cfg.method == "cosep":  # k-medoids at the budget's count, one channel per cluster
                    kept = cosep_at_count(dists.matrices[d["root"]], norms, n_keep, keep=cfg.keep, seed=cfg.seed)
                else:
                    kept = baseline_decision(graph, g, dataclasses.replace(cfg, counts={d["root"]: n_keep}))["kept"]
                d.update(kept=kept, n_kept=len(kept), budget_factor=factor)
        for d in decisions:
            _remove_unkept(graph, d)
    else:
        with prog.task("sequential pruning", total=len(groups)) as task:
            for g in groups:
                # statistics and the group are taken from the network as pruned so far (the paper)
                for d in decide([graph.group_of(g.root)]):
                    _remove_unkept(graph, d)
                    decisions.append(d)
                    if between_layers is not None:
                        between_layers(work, g.root)
                task.advance()
    after = count_macs_params(work, input_shape)
    plan = PruningPlan(
        base_model=base_spec or {},
        input_shape=input_shape,
        method=cfg.method,
        config={**cfg.to_json(), "budget_factor": factor, "num_classes": classes, "skipped_groups": skipped},
        groups=decisions,
        history=graph.history(),
        cost_before=before.to_json(),
        cost_after=after.to_json(),
        data=data_info or {},
        seconds=round(time.perf_counter() - start, 3),
        provenance=provenance(),
    )
    return work.eval(), plan
