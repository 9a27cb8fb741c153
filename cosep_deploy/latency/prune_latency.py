"""``prune_to_latency``: CoSeP (or L1) channel order per group, counts allocated to meet a measured speed-up.

Steps: the coupling graph and the groups as :func:`cosep_deploy.prune.prune` finds them; CoSeP's decisions
(knee representatives and profile distances) give each group's channel order and separability curve
(:mod:`.order`); the latency table of the target (measured here, read from the cache, or a given file)
prices every layer at any widths; :mod:`.loop` allocates, prunes, measures and corrects. Nothing is
written: the caller saves the returned plan and model.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cosep_deploy.artifacts import provenance
from cosep_deploy.errors import PruneError
from cosep_deploy.latency.allocate import CostTerm, GroupCurve, total_cost
from cosep_deploy.latency.layers import LayerSpec, layer_specs
from cosep_deploy.latency.loop import Calibration, Round, check_reachable, closed_loop, measure_speedup
from cosep_deploy.latency.order import cosep_order, coverage_curve
from cosep_deploy.latency.request import LatencyRequest
from cosep_deploy.latency.table import LatencyTable
from cosep_deploy.latency.tables import resolve_table
from cosep_deploy.progress import Progress, resolve_progress
from cosep_deploy.prune.coupling import ChannelGroup, CouplingGraph
from cosep_deploy.prune.macs import count_macs_params
from cosep_deploy.prune.plan import PruningPlan

__all__ = ["min_count", "prune_to_latency", "pruned_copy", "setup_groups"]


def min_count(size: int, ratio: float, round_to: int) -> int:
    """A group's least kept count: ``ratio`` of it, rounded up to the alignment, at most its size."""
    return min(size, max(round_to, math.ceil(math.ceil(size * ratio) / round_to) * round_to))


def setup_groups(
    model: nn.Module, example: torch.Tensor, cfg: Any
) -> tuple[nn.Module, CouplingGraph, list[ChannelGroup], list[str]]:
    """A copy of ``model`` to prune, its coupling graph, the prunable groups in call order (stem and
    classifier left alone as :func:`cosep_deploy.prune.prune` does) and the layers' call order."""
    from cosep_deploy.prune.api import call_order

    work = copy.deepcopy(model).eval()
    order = call_order(work, example)
    if not order:
        raise PruneError(f"{type(model).__name__} has no Conv2d or Linear layer to prune")
    ignored = [*cfg.ignored_layers, order[-1]]
    if not cfg.prune_stem:
        ignored.append(order[0])
    graph = CouplingGraph(work, example)
    position = {name: i for i, name in enumerate(order)}
    groups = [g for g in graph.groups(ignored=ignored) if g.size >= 2 and g.members and not g.grouped]
    if not groups:
        raise PruneError(f"{type(model).__name__}: no prunable channel group outside the ignored layers")
    return work, graph, sorted(groups, key=lambda g: position.get(g.root, len(order))), order


def _orders(
    work: nn.Module,
    graph: CouplingGraph,
    groups: Sequence[ChannelGroup],
    loader: Iterable[Any],
    cfg: Any,
    prog: Progress,
    example: torch.Tensor,
    num_classes: int,
) -> tuple[dict[str, list[int]], dict[str, np.ndarray], list[dict[str, Any]]]:
    """Per group: channel order, value curve V[0..N], and the selection decision recorded in the plan.

    CoSeP: the group's decision at its own (knee) count through the selection seam, then its knee
    representatives first and the rest by separability coverage; L1: channels by filter norm."""
    from cosep_deploy.prune.api import check_loader
    from cosep_deploy.prune.decision import CountChoice
    from cosep_deploy.prune.group_stats import collect_group_stats
    from cosep_deploy.prune.methods import get_method

    if cfg.method not in ("cosep", "l1"):
        raise PruneError(f"latency-targeted pruning orders channels by 'cosep' or 'l1', not {cfg.method!r}")
    cosep = cfg.method == "cosep"
    if cosep:
        check_loader(loader, num_classes)
    stats = collect_group_stats(
        work, graph, groups, loader, cfg, prog, num_classes=num_classes, example_inputs=example, distances=cosep
    )
    method = get_method(cfg.method)(cfg)
    orders, curves, decisions = {}, {}, []
    for g in groups:
        st = stats[g.root]
        if cosep:
            d = method.select(g, st)
            assert st.distances is not None  # collected above for every group CoSeP selects in
            orders[g.root] = cosep_order(st.distances, list(d.picked), st.norms)
            curves[g.root] = coverage_curve(st.distances, orders[g.root])
        else:  # the order is all L1 needs; the allocation sets the count
            d = method.select(g, st, CountChoice(g.size, "latency_allocation"))
            orders[g.root] = [int(i) for i in np.lexsort((np.arange(g.size), -st.norms))]
            mass = np.concatenate([[0.0], np.cumsum(st.norms[orders[g.root]])])
            curves[g.root] = mass / max(float(mass[-1]), 1e-30)
        decisions.append(d.to_json())
    return orders, curves, decisions


def _curves(
    groups: Sequence[ChannelGroup], values: Mapping[str, np.ndarray], mins: Mapping[str, int], round_to: int
) -> list[GroupCurve]:
    """Allowed counts (aligned, from the minimum to the dense width) and value ``width x V(count)``."""
    out = []
    for g in groups:
        allowed = sorted(set(range(mins[g.root], g.size + 1, round_to)) | {g.size})
        out.append(GroupCurve(g.root, tuple(allowed), tuple(g.size * float(values[g.root][c]) for c in allowed)))
    return out


def _terms(layers: Sequence[LayerSpec], table: LatencyTable, sizes: Mapping[str, int]) -> list[CostTerm]:
    """One cost term per layer: its table time at the widths its groups' counts give."""
    terms = []
    for s in layers:
        deps = tuple(dict.fromkeys([*s.in_groups, *s.out_groups]))

        def fn(counts: Mapping[str, int], s: LayerSpec = s) -> float:
            return table.layer_ms(s, *s.widths(counts, sizes))

        terms.append(CostTerm(s.name, deps, fn))
    return terms


def pruned_copy(
    work: nn.Module, example: torch.Tensor, orders: Mapping[str, list[int]], counts: Mapping[str, int]
) -> tuple[nn.Module, CouplingGraph]:
    """A copy of ``work`` keeping the first ``counts[root]`` channels of each group's ``orders[root]``."""
    model = copy.deepcopy(work)
    graph = CouplingGraph(model, example)
    for root, c in counts.items():
        kept = set(orders[root][:c])
        graph.remove_channels(root, [i for i in range(len(orders[root])) if i not in kept])
    return model.eval(), graph


def _table_for(
    work: nn.Module,
    sample: torch.Tensor,
    layers: Sequence[LayerSpec],
    request: LatencyRequest,
    mins: Mapping[str, int],
    sizes: Mapping[str, int],
    round_to: int,
    prog: Progress,
) -> tuple[LatencyTable, dict[str, Any], float]:
    """The run's table, its description for the plan, and the dense model's whole time (ms) here (from
    the table when the target cannot be measured on this machine)."""
    from cosep_deploy.export import onnx_from_model
    from cosep_deploy.latency.measure_ort import whole_model_ms

    with tempfile.TemporaryDirectory(prefix="cosep-latency-") as tmp:
        dense_path = Path(tmp) / "dense.onnx"

        def dense_onnx() -> Path:
            if not dense_path.is_file():
                onnx_from_model(work, sample, dense_path)
            return dense_path

        table, info = resolve_table(
            request, layers, mins=mins, sizes=sizes, round_to=round_to, dense_onnx=dense_onnx, progress=prog
        )
        if not info["measurable"]:
            return table, info, float(table.whole_model.get("dense_ms") or 0.0)
        return table, info, whole_model_ms(dense_onnx(), request.batch, request.threads)


@dataclasses.dataclass(frozen=True)
class _Problem:
    """The model being pruned and everything the allocation reads from it."""

    work: nn.Module
    graph: CouplingGraph
    groups: list[ChannelGroup]
    layers: list[LayerSpec]
    sizes: dict[str, int]
    mins: dict[str, int]
    example: torch.Tensor
    sample: torch.Tensor
    classes: int

    @property
    def input_shape(self) -> list[int]:
        return [int(d) for d in self.example.shape[1:]]


def _problem(
    model: nn.Module, example: torch.Tensor, config: Any, request: LatencyRequest, num_classes: int | None
) -> _Problem:
    work, graph, groups, _ = setup_groups(model, example, config)
    with torch.no_grad():
        classes = num_classes or int(work(example[:1]).shape[-1])
    return _Problem(
        work=work,
        graph=graph,
        groups=groups,
        layers=layer_specs(work, example, groups),
        sizes={g.root: g.size for g in groups},
        mins={g.root: min_count(g.size, request.min_keep_ratio, config.round_to) for g in groups},
        example=example,
        sample=torch.randn(2, *example.shape[1:], generator=torch.Generator().manual_seed(0)),
        classes=classes,
    )


def _selection(
    p: _Problem, loader: Iterable[Any], config: Any, prog: Progress, reuse: dict[str, Any] | None
) -> tuple[dict[str, list[int]], dict[str, np.ndarray], list[dict[str, Any]]]:
    """Channel orders, value curves and decisions; computed once per ``reuse`` dict."""
    if reuse is not None and "selection" in reuse:
        return copy.deepcopy(reuse["selection"])
    selection = _orders(p.work, p.graph, p.groups, loader, config, prog, p.example, p.classes)
    if reuse is not None:
        reuse["selection"] = copy.deepcopy(selection)
    return selection


def _measure_fn(
    p: _Problem, orders: Mapping[str, list[int]], request: LatencyRequest
) -> Callable[[Mapping[str, int]], dict[str, Any]]:
    """The closed loop's measurement: the pruned copy against the dense model with the interleaved harness,
    then the pruned model profiled whole for its per-layer times."""
    from cosep_deploy.latency.profile_ort import profile_layers_ort

    def measure(counts: Mapping[str, int]) -> dict[str, Any]:
        pruned, _ = pruned_copy(p.work, p.example, orders, counts)

        def profile(onnx_path: Path) -> dict[str, Any]:
            times = profile_layers_ort(
                onnx_path, p.layers, counts, p.sizes, batch=request.batch, threads=request.threads
            )
            return times.to_json()

        return measure_speedup(
            p.work,
            pruned,
            p.sample,
            batch=request.batch,
            threads=request.threads,
            iterations=request.bench_iterations,
            min_seconds=request.bench_min_seconds,
            profile=profile,
        )

    return measure


def _final_decisions(
    decisions: Sequence[dict[str, Any]],
    orders: Mapping[str, list[int]],
    values: Mapping[str, np.ndarray],
    counts: Mapping[str, int],
) -> list[dict[str, Any]]:
    """The plan's group decisions at the allocated counts (the knee count kept as ``knee_n_kept``)."""
    out = []
    for d in decisions:
        c = counts[d["root"]]
        out.append(
            {
                **d,
                "knee_n_kept": d.get("n_kept"),
                "kept": sorted(orders[d["root"]][:c]),
                "n_kept": c,
                "count_rule": "latency_allocation",
                "retained_separability": round(float(values[d["root"]][c]), 4),
            }
        )
    return out


def _latency_record(
    p: _Problem,
    request: LatencyRequest,
    table: LatencyTable,
    table_info: dict[str, Any],
    dense_ms: float,
    rounds: Sequence[Round],
    best: Round,
) -> dict[str, Any]:
    """What the plan records of the latency-targeted prune (``config["latency"]``)."""
    return {
        "request": request.to_json(),
        "table": table_info,
        "dense_ms_table_run": dense_ms,
        "min_counts": p.mins,
        "rounds": [r.to_json(request.speedup, request.budget_ms) for r in rounds],
        "chosen_round": list(rounds).index(best) + 1,
        "predicted_layer_ms": {s.name: round(table.layer_ms(s, *s.widths(best.counts, p.sizes)), 5) for s in p.layers},
        "value_weighting": "per group: width x retained coverage (order.py)",
    }


def _refuse_unreachable(terms: Sequence[CostTerm], p: _Problem, dense_ms: float, request: LatencyRequest) -> None:
    """The open-loop check: the table (scaled to the dense model's time) says even the minimum counts miss."""
    s_full = total_cost(terms, p.sizes)
    cal = Calibration(0.0, (dense_ms or 1.0) / s_full)
    check_reachable(cal, s_full, total_cost(terms, p.mins), speedup=request.speedup, budget_ms=request.budget_ms)


def prune_to_latency(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    example_inputs: torch.Tensor,
    config: Any,
    request: LatencyRequest,
    num_classes: int | None = None,
    base_spec: dict[str, Any] | None = None,
    data_info: dict[str, Any] | None = None,
    progress: Progress | None = None,
    reuse: dict[str, Any] | None = None,
) -> tuple[nn.Module, PruningPlan]:
    """Prune a copy of ``model`` so its measured speed-up on the request's target meets the request.

    ``config`` is a :class:`~cosep_deploy.prune.api.PruneConfig` (method ``cosep`` or ``l1``, oneshot;
    its ``round_to`` is the alignment). Returns ``(pruned_model, plan)``; the plan's ``config["latency"]``
    holds the table key, the rounds (requested/predicted/measured speed-up, the correction used, per-layer
    table/predicted/measured times) and the predicted per-layer times of the chosen round.
    ``reuse``: a dict kept by the caller across calls on the same model, data and config (benchmarks
    asking several speed-ups): the channel selection is computed once and taken from it afterwards.
    """
    prog = resolve_progress(progress)
    start = time.perf_counter()
    if config.schedule != "oneshot":
        raise PruneError("latency-targeted pruning allocates all groups together: use schedule 'oneshot'")
    p = _problem(model, example_inputs, config, request, num_classes)
    before = count_macs_params(p.work, p.input_shape)
    table, table_info, dense_ms = _table_for(
        p.work, p.sample, p.layers, request, p.mins, p.sizes, config.round_to, prog
    )
    terms = _terms(p.layers, table, p.sizes)
    _refuse_unreachable(terms, p, dense_ms, request)  # before the selection's work
    orders, values, decisions = _selection(p, loader, config, prog, reuse)
    curves = _curves([p.graph.group_of(d["root"]) for d in decisions], values, p.mins, config.round_to)
    with prog.task(f"closed loop (<= {request.rounds} rounds)", total=None):
        best, rounds = closed_loop(
            curves,
            terms,
            dense_ms=dense_ms or 1.0,
            speedup=request.speedup,
            budget_ms=request.budget_ms,
            rounds=request.rounds,
            tolerance=request.tolerance,
            measure=_measure_fn(p, orders, request) if table_info["measurable"] else None,
        )
    pruned, pgraph = pruned_copy(p.work, p.example, orders, best.counts)
    latency = _latency_record(p, request, table, table_info, dense_ms, rounds, best)
    plan = PruningPlan(
        base_model=base_spec or {},
        input_shape=p.input_shape,
        method=config.method,
        config={**config.to_json(), "num_classes": p.classes, "latency": latency},
        groups=_final_decisions(decisions, orders, values, best.counts),
        history=pgraph.history(),
        cost_before=before.to_json(),
        cost_after=count_macs_params(pruned, p.input_shape).to_json(),
        data=data_info or {},
        seconds=round(time.perf_counter() - start, 3),
        provenance=provenance(),
    )
    return pruned, plan
