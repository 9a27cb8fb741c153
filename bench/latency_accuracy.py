"""Accuracy at a measured speed-up: latency-targeted CoSeP vs MACs-budget CoSeP vs latency-targeted L1, after
fine-tuning, over seeds (digits, ResNet-20, ONNX Runtime on CPU).

Per seed a dense ResNet-20 is trained on the real digits data (32x32); then, per requested speed-up:
- ``cosep_latency``: ``prune_to_latency`` with CoSeP's channel order (the closed loop measures the speed-up);
- ``l1_latency``: the same allocation and closed loop with channels ordered by L1 filter norm (the
  selection criterion is the only difference);
- ``cosep_macs``: CoSeP with a global MACs budget (``prune --target-macs-ratio``), the ratio searched until
  its measured speed-up is within ``--macs-tolerance`` of the request (``bench/latency_targeted.py``'s
  search; first guess the latency-targeted model's MACs ratio).
Every model's speed-up is measured with the interleaved harness against the dense model (same batch,
threads and iteration counts); then BatchNorm is recalibrated on the statistics sample, top-1 is evaluated,
the model is fine-tuned with one schedule for all, and evaluated again. Reports per speed-up and method the
mean and 95% t-interval over seeds of top-1 (before and after fine-tuning), of the measured speed-up and of
the MACs ratio, and the paired differences cosep_latency - cosep_macs and cosep_latency - l1_latency.

ResNet-20 at 32x32 is small and per-operator overhead dominates its time on ONNX Runtime: at batch 1 it
reaches about 1.6x at most; at batch 8 with ``round_to 8`` (16-channel layers kept at 8 or more) about 1.8x,
so 2.0x is refused. The defaults are batch 32 and ``round_to 4``, where a 2.0x request measured 1.99x (at
8.3x fewer MACs) on the 2-core machine.

The issue's run (5 seeds, 1.5x and 2.0x):
  PYTHONPATH=$PWD python bench/latency_accuracy.py --out bench/results/latency_accuracy_digits32_resnet20.json
Smoke test of the script (tiny, meaningless numbers):
  PYTHONPATH=$PWD python bench/latency_accuracy.py --seeds 0 --speedups 1.2 --epochs 1 --finetune-epochs 1 \\
      --iterations 5 --min-seconds 0.2 --rounds 1 --macs-steps 1 --images-per-class 4 --out /tmp/smoke.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.compare_methods import fmt_stat, mean_ci, run_record, write_results
from bench.latency_targeted import macs_budget_at_speedup

METHODS = ("cosep_latency", "cosep_macs", "l1_latency")
PAIRS = (("cosep_latency", "cosep_macs"), ("cosep_latency", "l1_latency"))


@dataclasses.dataclass
class _Seed:
    """One seed's dense model, data and settings."""

    args: argparse.Namespace
    seed: int
    dense: Any
    dense_top1: float
    bundle: Any
    loader: Any
    example: torch.Tensor
    cache: str
    reuse: dict[str, dict[str, Any]]

    def measure(self, pruned: Any) -> dict[str, Any]:
        from cosep_deploy.latency.loop import measure_speedup

        sample = torch.randn(2, *self.bundle.input_shape, generator=torch.Generator().manual_seed(0))
        return measure_speedup(
            self.dense,
            pruned,
            sample,
            batch=self.args.batch,
            threads=self.args.threads,
            iterations=self.args.iterations,
            min_seconds=self.args.min_seconds,
        )

    def config(self, method: str) -> Any:
        from cosep_deploy.prune import PruneConfig

        a = self.args
        ratio = 1.0 if method == "l1" else None  # as the CLI: the allocation sets the counts, L1 only orders
        return PruneConfig(
            method=method, ratio=ratio, round_to=a.round_to, images_per_class=a.images_per_class, seed=self.seed
        )


def _dense(args: argparse.Namespace, seed: int, bundle: Any, cache: str) -> _Seed:
    from cosep_deploy.data import ClassBalancedSubset, make_loader
    from cosep_deploy.finetune import TrainConfig, train_model
    from cosep_deploy.models import ModelSpec, build_model

    c, h = bundle.input_shape[0], bundle.input_shape[1]
    dense = build_model(
        ModelSpec(name=args.model, num_classes=bundle.num_classes, in_channels=c, image_size=h), seed=seed
    )
    top1 = train_model(dense, bundle.train, bundle.val, TrainConfig(epochs=args.epochs, seed=seed)).val_top1
    print(f"{args.model} seed {seed}: dense top-1 {100 * top1:.2f}%", flush=True)
    loader = make_loader(ClassBalancedSubset(bundle.train, args.images_per_class, seed=seed), batch_size=128)
    example = torch.zeros((2, *bundle.input_shape))
    return _Seed(args, seed, dense.eval(), top1, bundle, loader, example, cache, {"cosep": {}, "l1": {}, "prune": {}})


def _latency(s: _Seed, method: str, speedup: float) -> tuple[Any, Any, dict[str, Any]]:
    """``prune_to_latency`` with ``method``'s channel order; (model, plan, measured of the chosen round)."""
    from cosep_deploy.latency.prune_latency import prune_to_latency
    from cosep_deploy.latency.request import LatencyRequest

    a = s.args
    request = LatencyRequest(
        speedup=speedup,
        batch=a.batch,
        threads=a.threads,
        rounds=a.rounds,
        min_keep_ratio=a.min_keep_ratio,
        cache_dir=s.cache,
        bench_iterations=a.iterations,
        bench_min_seconds=a.min_seconds,
    )
    pruned, plan = prune_to_latency(
        s.dense, s.loader, example_inputs=s.example, config=s.config(method), request=request, reuse=s.reuse[method]
    )
    lat = plan.config["latency"]
    return pruned, plan, lat["rounds"][lat["chosen_round"] - 1]["measured"]


def _macs(s: _Seed, speedup: float, first_ratio: float) -> tuple[Any, Any, dict[str, Any]] | None:
    """MACs-budget CoSeP searched to the requested measured speed-up; None if no ratio could be pruned."""
    from cosep_deploy.prune import prune

    found: dict[Any, Any] = {}

    def prune_at(ratio: float) -> tuple[Any, Any]:
        cfg = dataclasses.replace(s.config("cosep"), target_macs_ratio=ratio)
        found[ratio] = prune(s.dense, s.loader, example_inputs=s.example, config=cfg, reuse=s.reuse["prune"])
        return found[ratio]

    search = macs_budget_at_speedup(
        prune_at,
        s.measure,
        speedup,
        first_ratio=first_ratio,
        steps=s.args.macs_steps,
        tolerance=s.args.macs_tolerance,
    )
    best = search["best"]
    if best is None:
        return None
    pruned, plan = next(v for r, v in found.items() if round(r, 4) == best["target_macs_ratio"])
    return pruned, plan, best["measured"]


def _row(s: _Seed, method: str, speedup: float, done: tuple[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Recalibrate BatchNorm, evaluate, fine-tune, evaluate: one result row."""
    from cosep_deploy.data import make_loader
    from cosep_deploy.finetune import TrainConfig, evaluate, train_model
    from cosep_deploy.finetune.bn import recalibrate_batchnorm

    model, plan, measured = done
    if s.args.bn_batches:
        recalibrate_batchnorm(model, s.loader, max_batches=s.args.bn_batches)
    before = evaluate(model, make_loader(s.bundle.val, batch_size=256))
    ft = TrainConfig(epochs=s.args.finetune_epochs, lr=0.02, seed=s.seed)
    after = train_model(model, s.bundle.train, s.bundle.val, ft).val_top1
    print(
        f"  {speedup:.2f}x {method:14s} measured {measured['speedup']:.3f}x  MACs {plan.macs_ratio:.2f}x fewer  "
        f"top-1 before FT {100 * before:6.2f}%  after {100 * after:6.2f}%",
        flush=True,
    )
    return {
        "model": s.args.model,
        "seed": s.seed,
        "requested_speedup": speedup,
        "method": method,
        "measured_speedup": measured["speedup"],
        "measured": measured,
        "macs_ratio": plan.macs_ratio,
        "macs_pruned": plan.cost_after["macs"],
        "params_pruned": plan.cost_after["params"],
        "top1_before_ft": before,
        "top1_after_ft": after,
        "dense_top1": s.dense_top1,
        "kept": {g["root"]: g["n_kept"] for g in plan.groups},
    }


def _one_seed(args: argparse.Namespace, seed: int, bundle: Any, cache: str) -> list[dict[str, Any]]:
    s = _dense(args, seed, bundle, cache)
    rows = []
    for speedup in args.speedups:
        cosep = _latency(s, "cosep", speedup)
        rows.append(_row(s, "cosep_latency", speedup, cosep))
        if "l1_latency" in args.methods:
            rows.append(_row(s, "l1_latency", speedup, _latency(s, "l1", speedup)))
        if "cosep_macs" in args.methods:
            macs = _macs(s, speedup, cosep[1].macs_ratio)
            if macs is not None:
                rows.append(_row(s, "cosep_macs", speedup, macs))
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (requested speed-up, method): mean and 95% interval over seeds; paired differences."""
    out = []
    for speedup in sorted({r["requested_speedup"] for r in rows}):
        at = [r for r in rows if r["requested_speedup"] == speedup]
        for method in [m for m in METHODS if any(r["method"] == m for r in at)]:
            sel = [r for r in at if r["method"] == method]
            out.append(
                {
                    "requested_speedup": speedup,
                    "method": method,
                    **{k: mean_ci([r[k] for r in sel]) for k in ("measured_speedup", "macs_ratio")},
                    "before_ft": mean_ci([r["top1_before_ft"] for r in sel]),
                    "after_ft": mean_ci([r["top1_after_ft"] for r in sel]),
                }
            )
        for a, b in PAIRS:
            by_seed = {r["seed"]: r for r in at if r["method"] == b}
            mine = [r for r in at if r["method"] == a and r["seed"] in by_seed]
            diffs = [r["top1_after_ft"] - by_seed[r["seed"]]["top1_after_ft"] for r in mine]
            out.append({"requested_speedup": speedup, "method": f"{a} - {b}", "after_ft": mean_ci(diffs)})
    return out


def table(summary: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| requested | method | measured speed-up | MACs ratio | top-1 before FT | top-1 after FT |",
        "|---|---|---|---|---|---|",
    ]
    for e in summary:
        lines.append(
            f"| {e['requested_speedup']:g}x | {e['method']} | {fmt_stat(e.get('measured_speedup'), 1.0, 3)} | "
            f"{fmt_stat(e.get('macs_ratio'), 1.0)} | {fmt_stat(e.get('before_ft'))} | {fmt_stat(e.get('after_ft'))} |"
        )
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--data", default="digits:size=32")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--speedups", type=float, nargs="+", default=[1.5, 2.0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--batch", type=int, default=32, help="latency batch (see the module docstring)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--round-to", type=int, default=4)
    parser.add_argument("--min-keep-ratio", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=30, help="least timed iterations per engine (harness)")
    parser.add_argument("--min-seconds", type=float, default=3.0, help="least timed seconds per engine (harness)")
    parser.add_argument("--macs-steps", type=int, default=4, help="most MACs-budget prunes per cell (search)")
    parser.add_argument("--macs-tolerance", type=float, default=0.03)
    parser.add_argument("--epochs", type=int, default=15, help="dense training epochs")
    parser.add_argument("--finetune-epochs", type=int, default=8)
    parser.add_argument("--images-per-class", type=int, default=32)
    parser.add_argument("--bn-batches", type=int, default=4, help="BatchNorm recalibration batches (0 = off)")
    parser.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    from cosep_deploy.data import load_dataset

    args = _parser().parse_args(argv)
    bundle = load_dataset(args.data)
    if bundle.is_synthetic:
        print("refusing: accuracy comparisons need real data, not a synthetic set", file=sys.stderr)
        return 2
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cosep-latency-cache-") as cache:
        for seed in args.seeds:
            rows += _one_seed(args, seed, bundle, cache)
            lines = _write(args, argv, bundle, rows, start, complete=seed == args.seeds[-1])
    print("\n".join(lines))
    return 0


def _write(
    args: argparse.Namespace,
    argv: list[str] | None,
    bundle: Any,
    rows: list[dict[str, Any]],
    start: float,
    *,
    complete: bool,
) -> list[str]:
    """JSON and markdown of the rows so far (after every seed; ``complete`` only after the last)."""
    summary = summarize(rows)
    lines = table(summary)
    result = {
        **run_record("latency_accuracy.py", args, argv, start),
        "data": bundle.description,
        "validation_images": len(bundle.val),
        "complete": complete,
        "seeds_done": sorted({r["seed"] for r in rows}),
        "rows": rows,
        "summary": summary,
        "table_md": "\n".join(lines),
    }
    partial = [] if complete else [f"Partial: seeds {result['seeds_done']} of {args.seeds}.", ""]
    write_results(args.out, result, [f"Command: `{result['command']}`", "", *partial, *lines])
    return lines


if __name__ == "__main__":
    sys.exit(main())
