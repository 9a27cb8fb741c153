"""Prune to a measured speed-up, not a MACs count: latency-targeted CoSeP on ONNX Runtime (CPU).

Per model (ImageNet shape, 224x224, 1000 classes, random init; class statistics from seeded synthetic
class-structured images at 64x64, as ``bench/latency_paper.py`` does), per batch size and requested
speed-up: CoSeP orders each group's channels, the latency table (measured here, cached) prices every
layer, the allocator chooses the counts and the closed loop (at most ``--rounds`` rounds; the table
corrected per layer from the pruned model's profile, and a global residual) measures the real speed-up
with the interleaved harness. Each cell records requested / predicted / measured speed-up per round (with
the per-layer predicted vs measured times and their median error), whether the final measured speed-up is
within 5% of the request, the MACs and parameters kept, and an A/A control (the dense model against a
second session of itself, timed the same way). Each model and batch size also records its table: build
seconds, points, noise, and the share of the whole model's time its layers explain.

MACs-budget baseline (``--macs-baseline``, on by default): per cell, CoSeP with a global MACs budget
(``prune --target-macs-ratio``) brought to the *same measured speed-up* as the latency-targeted model
(its measured value, not the request): the MACs ratio is searched (secant on log speed-up vs log MACs
ratio, first guess the latency model's MACs ratio) until the MACs-budget model's measured speed-up is
within ``--macs-tolerance`` of it, at most ``--macs-steps`` prunes. Equal measured speed-up, not equal MACs,
is the comparison asked for: at the same speed on the target, which keeps more MACs and parameters
(capacity). Using the latency model's MACs as the budget would compare at equal MACs instead and credit the
MACs-budget model with a speed it does not have; both models' measured speed-ups and CIs are recorded.

Usage (the issue's full table; hours on a 2-core machine):
  PYTHONPATH=$PWD python bench/latency_targeted.py --out bench/results/latency_targeted_ort_cpu2.json
A part of it:
  PYTHONPATH=$PWD python bench/latency_targeted.py --models mobilenet_v2 --batches 1 --out ...
Table build time alone (fresh cache):
  PYTHONPATH=$PWD python bench/latency_targeted.py --table-only --out bench/results/latency_tables_ort_cpu2.json
Smoke test of the script (tiny, meaningless numbers):
  PYTHONPATH=$PWD python bench/latency_targeted.py --models mobilenet_v2 --batches 1 --speedups 1.08 --size 64 \\
      --classes 10 --iterations 5 --min-seconds 0.2 --rounds 2 --macs-steps 2 --out /tmp/smoke.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cosep_deploy.bench.environment import describe_environment

MODELS = ("resnet50", "vgg16_bn", "mobilenet_v2")
CLASSES, SIZE, STATS_SIZE, PER_CLASS = 1000, 224, 64, 2


def _model_and_loader(name: str, args: argparse.Namespace) -> tuple[Any, Any]:
    from cosep_deploy.data import ClassBalancedSubset, load_dataset, make_loader
    from cosep_deploy.models import ModelSpec, build_model

    torch.manual_seed(0)
    spec = ModelSpec(name=name, num_classes=args.classes, in_channels=3, image_size=args.size)
    model = build_model(spec, seed=0).eval()
    n = args.classes * PER_CLASS
    data = load_dataset(f"synthetic:{args.classes},size={STATS_SIZE},channels=3,n={n}")
    return model, make_loader(ClassBalancedSubset(data.train, PER_CLASS, seed=0), batch_size=64)


def _table_only(name: str, batch: int, args: argparse.Namespace, cache: str) -> dict[str, Any]:
    """Build (not read) the latency table of ``name`` at ``batch`` and time it."""
    from cosep_deploy.export import onnx_from_model
    from cosep_deploy.latency.layers import layer_specs
    from cosep_deploy.latency.prune_latency import min_count, setup_groups
    from cosep_deploy.latency.request import LatencyRequest
    from cosep_deploy.latency.tables import resolve_table
    from cosep_deploy.progress import RichProgress
    from cosep_deploy.prune import PruneConfig

    model, _ = _model_and_loader(name, args)
    example = torch.randn(2, 3, args.size, args.size)
    cfg = PruneConfig(round_to=args.round_to)
    work, _, groups, _ = setup_groups(model, example, cfg)
    layers = layer_specs(work, example, groups)
    sizes = {g.root: g.size for g in groups}
    mins = {g.root: min_count(g.size, args.min_keep_ratio, args.round_to) for g in groups}
    request = LatencyRequest(speedup=2.0, batch=batch, threads=args.threads, cache_dir=cache, rebuild_table=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        dense = Path(tmp) / "dense.onnx"
        onnx_from_model(work, example, dense)
        table, _ = resolve_table(
            request,
            layers,
            mins=mins,
            sizes=sizes,
            round_to=args.round_to,
            dense_onnx=lambda: dense,
            progress=RichProgress(),
        )
    return {
        "model": name,
        "batch": batch,
        "wall_seconds": round(time.perf_counter() - start, 2),
        **_table_row(table),
        "layers": len(layers),
    }


def _table_row(table: Any) -> dict[str, Any]:
    return {
        "sweep_seconds": table.seconds,
        "layer_shapes": len(table.entries),
        "points": table.noise["points"],
        "noise": table.noise,
        "whole_model": table.whole_model,
        "key": table.key,
    }


def _measure(model: Any, pruned: Any, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """``pruned`` against ``model`` with the interleaved harness (the closed loop's own measurement)."""
    from cosep_deploy.latency.loop import measure_speedup

    return measure_speedup(
        model,
        pruned,
        torch.randn(2, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)),
        batch=batch,
        threads=args.threads,
        iterations=args.iterations,
        min_seconds=args.min_seconds,
    )


def _next_ratio(tries: list[dict[str, Any]], target: float) -> float:
    """The next MACs ratio to ask for: speed-up modelled as ``c * macs_ratio ** alpha`` through the last two
    tries (alpha = 1 with one try, or when the two do not fix a positive slope)."""
    last = tries[-1]
    r1, s1 = float(last["macs_ratio"]), float(last["measured"]["speedup"])
    alpha = 1.0
    if len(tries) >= 2:
        r0, s0 = float(tries[-2]["macs_ratio"]), float(tries[-2]["measured"]["speedup"])
        if abs(math.log(r1 / r0)) > 1e-6:
            alpha = math.log(s1 / s0) / math.log(r1 / r0)
        if not 0.1 < alpha < 5:
            alpha = 1.0
    return min(50.0, max(1.02, r1 * (target / s1) ** (1.0 / alpha)))


def macs_budget_at_speedup(
    prune_at: Callable[[float], tuple[Any, Any]],
    measure: Callable[[Any], dict[str, Any]],
    target: float,
    *,
    first_ratio: float,
    steps: int,
    tolerance: float,
) -> dict[str, Any]:
    """MACs-budget pruning (``prune_at(ratio) -> (model, plan)``) searched to a measured speed-up of
    ``target``; returns the try closest to it (and every try)."""
    from cosep_deploy.errors import CosepError

    tries: list[dict[str, Any]] = []
    ratio = max(1.02, first_ratio)
    for _ in range(max(1, steps)):
        try:
            pruned, plan = prune_at(ratio)
        except CosepError as exc:  # e.g. a ratio the MACs allocator cannot reach
            tries.append({"target_macs_ratio": ratio, "error": str(exc)})
            break
        tries.append(
            {
                "target_macs_ratio": round(ratio, 4),
                "macs_ratio": plan.macs_ratio,
                "macs_pruned": plan.cost_after["macs"],
                "params_pruned": plan.cost_after["params"],
                "measured": measure(pruned),
            }
        )
        if abs(tries[-1]["measured"]["speedup"] / target - 1) <= tolerance:
            break
        ratio = _next_ratio([t for t in tries if "measured" in t], target)
    done = [t for t in tries if "measured" in t]
    best = min(done, key=lambda t: abs(t["measured"]["speedup"] / target - 1)) if done else None
    return {"target_speedup": target, "best": best, "tries": tries}


def _round_summary(r: dict[str, Any]) -> dict[str, Any]:
    from cosep_deploy.bench.latency_report import layer_errors

    errors = sorted(abs(e) for e in layer_errors(r))
    return {
        **{k: r[k] for k in ("predicted_speedup", "measured_speedup", "measured", "correction", "layers")},
        "median_abs_layer_error": errors[len(errors) // 2] if errors else None,
    }


def _latency_cell(
    name: str, model: Any, loader: Any, batch: int, speedup: float, ctx: dict[str, Any]
) -> dict[str, Any]:
    from cosep_deploy.latency.prune_latency import prune_to_latency
    from cosep_deploy.latency.request import LatencyRequest
    from cosep_deploy.progress import RichProgress

    args = ctx["args"]
    request = LatencyRequest(
        speedup=speedup,
        batch=batch,
        threads=args.threads,
        rounds=args.rounds,
        min_keep_ratio=args.min_keep_ratio,
        cache_dir=ctx["cache"],
        bench_iterations=args.iterations,
        bench_min_seconds=args.min_seconds,
    )
    start = time.perf_counter()
    _, plan = prune_to_latency(
        model,
        loader,
        example_inputs=torch.randn(2, 3, args.size, args.size),
        config=ctx["cfg"],
        request=request,
        progress=RichProgress(),
        reuse=ctx["reuse"],
    )
    lat = plan.config["latency"]
    final = lat["rounds"][lat["chosen_round"] - 1]
    return {
        "model": name,
        "batch": batch,
        "requested_speedup": speedup,
        "measured_speedup": final["measured_speedup"],
        "measured": final["measured"],
        "within_5pct": abs(final["measured_speedup"] / speedup - 1) <= 0.05,
        "rounds": [_round_summary(r) for r in lat["rounds"]],
        "chosen_round": lat["chosen_round"],
        "table": lat["table"],
        "macs_dense": plan.cost_before["macs"],
        "macs_pruned": plan.cost_after["macs"],
        "params_dense": plan.cost_before["params"],
        "params_pruned": plan.cost_after["params"],
        "macs_ratio": plan.macs_ratio,
        "kept": {g["root"]: [g["n_kept"], g["size"]] for g in plan.groups},
        "seconds": round(time.perf_counter() - start, 1),
    }


def _macs_baseline(model: Any, loader: Any, cell: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    """CoSeP with a MACs budget at the latency model's measured speed-up; MACs and params kept by each."""
    from cosep_deploy.prune import prune

    args = ctx["args"]
    example = torch.randn(2, 3, args.size, args.size)
    start = time.perf_counter()

    def prune_at(ratio: float) -> tuple[Any, Any]:
        cfg = dataclasses.replace(ctx["cfg"], target_macs_ratio=ratio)
        return prune(model, loader, example_inputs=example, config=cfg, reuse=ctx["prune_reuse"])

    found = macs_budget_at_speedup(
        prune_at,
        lambda pruned: _measure(model, pruned, cell["batch"], args),
        float(cell["measured_speedup"]),
        first_ratio=float(cell["macs_ratio"]),
        steps=args.macs_steps,
        tolerance=args.macs_tolerance,
    )
    best = found["best"]
    if best is not None:
        found["latency_over_macs"] = {
            "macs_kept": cell["macs_pruned"] / best["macs_pruned"],
            "params_kept": cell["params_pruned"] / best["params_pruned"],
            "speedup_gap": best["measured"]["speedup"] / cell["measured_speedup"] - 1,
        }
    found["seconds"] = round(time.perf_counter() - start, 1)
    return found


def _print_cell(cell: dict[str, Any]) -> None:
    m = cell["measured"]
    line = (
        f"{cell['model']} b={cell['batch']} request {cell['requested_speedup']:.2f}x: measured "
        f"{cell['measured_speedup']:.3f}x [{m['ci_low']:.3f}, {m['ci_high']:.3f}] after {len(cell['rounds'])} "
        f"round(s); MACs {cell['macs_ratio']:.2f}x fewer"
    )
    if "aa_control" in cell:
        line += f"; A/A {cell['aa_control']['speedup']:.3f}x"
    best = (cell.get("macs_baseline") or {}).get("best")
    if best is not None:
        ratio = cell["macs_baseline"]["latency_over_macs"]
        line += (
            f"; MACs-budget CoSeP at {best['measured']['speedup']:.3f}x keeps {best['macs_ratio']:.2f}x fewer MACs "
            f"(latency-targeted keeps {ratio['macs_kept']:.2f}x its MACs, {ratio['params_kept']:.2f}x its params)"
        )
    print(line, flush=True)


def _cells(name: str, args: argparse.Namespace, cache: str, results: dict[str, Any], start: float) -> None:
    """Every (batch, speed-up) cell of one model and the tables the cells measured, added to ``results``,
    which is written after each cell, so a run cut off by a time limit keeps what it finished."""
    from cosep_deploy.latency.table import LatencyTable
    from cosep_deploy.prune import PruneConfig

    model, loader = _model_and_loader(name, args)
    cfg = PruneConfig(round_to=args.round_to, images_per_class=PER_CLASS, pair_budget=20000)
    # statistics and selections are collected once per model: the MACs-budget search re-prunes many times
    ctx = {"args": args, "cache": cache, "cfg": cfg, "reuse": {}, "prune_reuse": {}}
    for batch in args.batches:
        for speedup in args.speedups:
            cell = _latency_cell(name, model, loader, batch, speedup, ctx)
            if cell["table"]["source"] == "measured":  # the first cell of this batch built the table
                table = LatencyTable.load(cell["table"]["path"])
                results["tables"].append({"model": name, "batch": batch, **_table_row(table)})
            if args.aa_check:
                cell["aa_control"] = _measure(model, model, batch, args)
            if args.macs_baseline:
                cell["macs_baseline"] = _macs_baseline(model, loader, cell, ctx)
            _print_cell(cell)
            results["cells"].append(cell)
            _write(results, args, start)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 8])
    parser.add_argument("--speedups", nargs="*", type=float, default=[1.5, 2.0])
    parser.add_argument("--round-to", type=int, default=16)
    parser.add_argument("--min-keep-ratio", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=30, help="least timed iterations per engine (harness)")
    parser.add_argument("--min-seconds", type=float, default=5.0, help="least timed seconds per engine (harness)")
    parser.add_argument("--no-aa-check", dest="aa_check", action="store_false")
    parser.add_argument("--no-macs-baseline", dest="macs_baseline", action="store_false")
    parser.add_argument("--macs-steps", type=int, default=4, help="most MACs-budget prunes per cell (search)")
    parser.add_argument("--macs-tolerance", type=float, default=0.03, help="MACs-budget search: relative tolerance")
    parser.add_argument("--table-only", action="store_true", help="only time the table build (fresh cache)")
    parser.add_argument("--cache", type=Path, default=None, help="table cache folder (default: a fresh temp dir)")
    parser.add_argument("--size", type=int, default=SIZE, help="input size (smoke tests only; the issue: 224)")
    parser.add_argument("--classes", type=int, default=CLASSES, help="classes (smoke tests only; the issue: 1000)")
    parser.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    results: dict[str, Any] = {
        "command": "python bench/latency_targeted.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "args": {k: str(v) for k, v in vars(args).items()},
        "environment": describe_environment(),
        "tables": [],
        "cells": [],
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cosep-latency-cache-") as tmp:
        cache = str(args.cache or tmp)
        for name in args.models:
            if args.table_only:
                for batch in args.batches:
                    row = _table_only(name, batch, args, cache)
                    print(
                        f"{name} b={batch}: table of {row['layer_shapes']} layer shapes, {row['points']} points in "
                        f"{row['sweep_seconds']:.0f} s (wall {row['wall_seconds']:.0f} s); explains "
                        f"{row['whole_model']['explained_fraction']} of the dense time; median noise "
                        f"{row['noise']['median_rel_iqr']:.3f}",
                        flush=True,
                    )
                    results["tables"].append(row)
            else:
                _cells(name, args, cache, results, start)
    _write(results, args, start, complete=True)
    print(f"-> {args.out}")
    return 0


def _write(results: dict[str, Any], args: argparse.Namespace, start: float, *, complete: bool = False) -> None:
    """The results so far (``complete`` False: a partial run, marked as such) written atomically."""
    from cosep_deploy.artifacts import atomic_write_text

    cells = results["cells"]
    out = {
        **results,
        "complete": complete,
        "all_within_5pct": all(c["within_5pct"] for c in cells) if cells else None,
        "seconds": round(time.perf_counter() - start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
