"""CoSeP against the baselines, at matched cost, over seeds, before and after fine-tuning, on real data.

For every model and seed a dense model is trained; then, per MACs ratio (dense / pruned):
- ``cosep_budget``: CoSeP, its knee counts scaled by one factor to the ratio (k-medoids at that count);
- ``l1``, ``random``, ``random_clusters``: CoSeP's per-group counts (identical MACs), channels by L1 norm,
  at random, or one largest-L1 channel per *random* cluster (does the clustering matter?);
- ``cosep_medoid``: as cosep_budget, keeping each cluster's medoid; ``cosep_paper``: the paper's knee rule;
- ``uniform``: one keep ratio everywhere, scaled to the ratio; ``emp_scaled``: EMP's N_eff counts scaled;
and once per seed, at each method's own cost: ``cosep_knee`` (the knee, unscaled), ``l1_at_knee`` (L1 at
those counts) and ``emp`` (beta = 1). Every pruned model is BatchNorm-recalibrated (so top-1 before
fine-tuning measures the selection), evaluated, fine-tuned with the same schedule, evaluated again.
Reports mean and 95% t-interval over seeds, and the paired CoSeP - L1 difference with its interval.

``--train-per-class N`` builds the harder setting from the same real data: only N training images per
class (dense training, statistics and fine-tuning all see only those), the full validation split.
Results are written after every (model, seed); ``--resume`` keeps the rows already in ``--out`` (refused
when they were measured with another protocol) and runs only the pairs it lacks, so a long comparison can
be spread over several sittings. A seed in progress keeps its dense weights and finished rows in
``<out stem>.partial/`` beside ``--out``; ``--resume`` continues it from there.

The whole comparison (the README's table; add ``--train-per-class 20`` and ``_small`` to the name for the
harder setting; VGG-16 does not learn at the default lr 0.05):
  python bench/compare_methods.py --models resnet20 --out bench/results/methods_digits32_resnet20.json
  python bench/compare_methods.py --models mobilenetv2_cifar --out bench/results/methods_digits32_mobilenetv2_cifar.json
  python bench/compare_methods.py --models vgg16_cifar --lr 0.01 --finetune-lr 0.004 \\
      --out bench/results/methods_digits32_vgg16_cifar.json    (--epochs 40 with 20 images per class)
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from cosep_deploy.bench.environment import describe_environment
from cosep_deploy.data import ClassBalancedSubset, load_dataset, make_loader
from cosep_deploy.finetune import TrainConfig, evaluate, train_model
from cosep_deploy.models import ModelSpec, build_model
from cosep_deploy.prune import PruneConfig, prune

BUDGET_METHODS = (
    "cosep_budget",
    "l1",
    "random",
    "random_clusters",
    "cosep_medoid",
    "cosep_paper",
    "uniform",
    "emp_scaled",
)
OWN_COST_METHODS = ("cosep_knee", "l1_at_knee", "emp")
# Paired differences (after fine-tuning, same seed and ratio) that answer the comparison's questions:
# selection at identical counts, does the clustering matter, the allocation (knee rule; uniform), the medoid.
PAIRS = (
    ("cosep_budget", "l1"),
    ("cosep_budget", "random_clusters"),
    ("cosep_paper", "cosep_budget"),
    ("cosep_paper", "l1"),
    ("uniform", "cosep_budget"),
    ("cosep_medoid", "cosep_budget"),
)


def mean_ci(values: list[float]) -> dict[str, Any]:
    """Mean and 95% t-interval (None with one value)."""
    a = np.asarray(values, dtype=np.float64)
    if a.size < 2:
        return {"mean": float(a.mean()) if a.size else None, "ci95": None, "n": int(a.size)}
    half = float(stats.t.ppf(0.975, a.size - 1)) * float(a.std(ddof=1)) / math.sqrt(a.size)
    return {"mean": float(a.mean()), "ci95": [float(a.mean() - half), float(a.mean() + half)], "n": int(a.size)}


def _configs(ratio: float, seed: int, counts: dict[str, int], common: dict[str, Any]) -> dict[str, PruneConfig]:
    return {
        "l1": PruneConfig(method="l1", counts=counts, seed=seed, **common),
        "random": PruneConfig(method="random", counts=counts, seed=seed, **common),
        "random_clusters": PruneConfig(method="random_clusters", counts=counts, seed=seed, **common),
        "cosep_medoid": PruneConfig(keep="medoid", target_macs_ratio=ratio, seed=seed, **common),
        "cosep_paper": PruneConfig(knee_rule="paper", target_macs_ratio=ratio, seed=seed, **common),
        "uniform": PruneConfig(method="uniform", target_macs_ratio=ratio, seed=seed, **common),
        "emp_scaled": PruneConfig(method="emp", target_macs_ratio=ratio, seed=seed, **common),
    }


class ResumeError(ValueError):
    """Saved rows or a part-done seed that cannot be continued with the arguments given."""


class TimeUp(Exception):
    """``--time-limit`` passed: the seed in progress is kept part-done for ``--resume``."""


def _time_is_up(args: argparse.Namespace) -> bool:
    return args.deadline is not None and time.perf_counter() >= args.deadline


def _check_time(args: argparse.Namespace) -> None:
    if _time_is_up(args):
        raise TimeUp


def _partial_dir(out: Path, model_name: str, seed: int) -> Path:
    """Where a (model, seed) in progress keeps its dense weights and finished rows (gone once the seed is in --out)."""
    return out.parent / f"{out.stem}.partial" / f"{model_name}_seed{seed}"


def _protocol(args: argparse.Namespace) -> dict[str, str]:
    return {k: str(getattr(args, k)) for k in PROTOCOL_ARGS}


def _load_partial(
    args: argparse.Namespace, where: Path
) -> tuple[dict[str, torch.Tensor], float, list[dict[str, Any]], float]:
    """Dense weights, dense top-1, rows and seconds of a seed interrupted part-way; ResumeError when that part was
    measured with another protocol (or is unreadable), so that a resumed seed never mixes protocols."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        saved = json.loads((where / "rows.json").read_text())
        state = load((where / "dense.safetensors").read_bytes())
    except (OSError, ValueError, SafetensorError) as exc:
        raise ResumeError(f"cannot resume from {where}: {exc}; delete that folder to start the seed over") from exc
    if saved.get("protocol") != _protocol(args):
        raise ResumeError(f"cannot resume from {where}: it was measured with another protocol; delete it to start over")
    return state, float(saved["dense_top1"]), list(saved["rows"]), float(saved.get("seconds", 0.0))


def _save_partial(
    args: argparse.Namespace,
    where: Path,
    dense_top1: float,
    rows: list[dict[str, Any]],
    seconds: float,
    dense: torch.nn.Module | None = None,
) -> None:
    """Dense weights first (a new folder), then the rows: ``rows.json`` exists only beside its own weights."""
    from safetensors.torch import save

    from cosep_deploy.artifacts import atomic_write_bytes, atomic_write_text

    if dense is not None:
        where.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in dense.state_dict().items()}
        atomic_write_bytes(where / "dense.safetensors", save(state))
    record = {"protocol": _protocol(args), "dense_top1": dense_top1, "seconds": seconds, "rows": rows}
    atomic_write_text(where / "rows.json", json.dumps(record, indent=1) + "\n")


def _one_seed(
    args: argparse.Namespace, model_name: str, seed: int, bundle: Any, train_set: Any
) -> tuple[list[dict[str, Any]], float]:
    """Every row of one (model, seed). After the dense model is trained and after every row, the part done so far
    is kept in ``_partial_dir``; with ``--resume`` an interrupted seed continues from there (same dense weights,
    only the rows it lacks: loaders, pruning and fine-tuning are seeded, so the rows are those a single run gives).
    Returns the rows and the seconds an earlier sitting spent on this seed."""
    spec = ModelSpec(
        name=model_name,
        num_classes=bundle.num_classes,
        in_channels=bundle.input_shape[0],
        image_size=bundle.input_shape[1],
    )
    dense = build_model(spec, seed=seed)
    where = _partial_dir(args.out, model_name, seed)
    rows: list[dict[str, Any]] = []
    start, earlier = time.perf_counter(), 0.0
    if args.resume and (where / "rows.json").exists():
        state, dense_top1, rows, earlier = _load_partial(args, where)
        dense.load_state_dict(state)
        print(f"{model_name} seed {seed}: resuming from {where} ({len(rows)} rows done)", flush=True)
    else:
        _drop_partial(args.out, model_name, seed)
        dense_top1 = train_model(
            dense, train_set, bundle.val, TrainConfig(epochs=args.epochs, lr=args.lr, seed=seed)
        ).val_top1
        _save_partial(args, where, dense_top1, rows, time.perf_counter() - start, dense)
        _check_time(args)
    print(f"{model_name} seed {seed}: dense top-1 {100 * dense_top1:.2f}%", flush=True)
    done = {(r["method"], r["target_ratio"]) for r in rows}
    val = make_loader(bundle.val, batch_size=256)
    loader = make_loader(ClassBalancedSubset(train_set, args.images_per_class, seed=seed), batch_size=128)
    example = torch.zeros((2, *bundle.input_shape))
    common = {"bn_recalibrate": args.bn_batches, "images_per_class": args.images_per_class}
    ft = TrainConfig(epochs=args.finetune_epochs, lr=args.finetune_lr, seed=seed, distill_alpha=args.distill)
    reuse: dict[str, Any] = {}  # statistics once per seed; prunes differing only in counts share them

    def run(name: str, ratio: float | None, cfg: PruneConfig, pruned: tuple[Any, Any] | None = None) -> None:
        if (name, ratio) in done:
            return
        model, plan = pruned or prune(dense, loader, example_inputs=example, config=cfg, reuse=reuse)
        before = evaluate(model, val)
        after = train_model(model, train_set, bundle.val, ft, teacher=dense if args.distill > 0 else None).val_top1
        rows.append(
            {
                "model": model_name,
                "seed": seed,
                "method": name,
                "target_ratio": ratio,
                "macs_ratio": plan.macs_ratio,
                "top1_before_ft": before,
                "top1_after_ft": after,
                "dense_top1": dense_top1,
                "kept": {g["root"]: g["n_kept"] for g in plan.groups},
            }
        )
        _save_partial(args, where, dense_top1, rows, earlier + time.perf_counter() - start)
        print(
            f"  {name:16s} {plan.macs_ratio:.2f}x  before FT {100 * before:6.2f}%  after {100 * after:6.2f}%",
            flush=True,
        )
        _check_time(args)

    knee = prune(dense, loader, example_inputs=example, config=PruneConfig(seed=seed, **common), reuse=reuse)
    knee_counts = {g["root"]: g["n_kept"] for g in knee[1].groups}
    run("cosep_knee", None, PruneConfig(), knee)
    run("l1_at_knee", None, PruneConfig(method="l1", counts=knee_counts, seed=seed, **common))
    run("emp", None, PruneConfig(method="emp", seed=seed, **common))
    for ratio in args.ratios:
        if all((m, ratio) in done for m in ("cosep_budget", *args.methods)):
            continue
        budget = prune(
            dense,
            loader,
            example_inputs=example,
            config=PruneConfig(target_macs_ratio=ratio, seed=seed, **common),
            reuse=reuse,
        )
        run("cosep_budget", ratio, PruneConfig(), budget)
        counts = {g["root"]: g["n_kept"] for g in budget[1].groups}
        for name, cfg in _configs(ratio, seed, counts, common).items():
            if name in args.methods:
                run(name, ratio, cfg)
    return rows, earlier


def _by_seed(rows: list[dict[str, Any]], key: str) -> dict[tuple[str, float, str], dict[int, float]]:
    """``row[key]`` per (model, ratio, method) and seed; ratio 0.0 for the own-cost methods."""
    out: dict[tuple[str, float, str], dict[int, float]] = {}
    for r in rows:
        out.setdefault((r["model"], r["target_ratio"] or 0.0, r["method"]), {})[r["seed"]] = r[key]
    return out


def _paired(a: dict[int, float], b: dict[int, float]) -> dict[str, Any]:
    """Mean and 95% interval of ``a - b`` over the seeds both have."""
    return mean_ci([a[s] - b[s] for s in sorted(a.keys() & b.keys())])


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (model, ratio, method): mean and interval of top-1 before/after; paired CoSeP - L1 difference.
    One ``dense`` entry per model (its trained dense top-1, MACs ratio 1) first."""
    when = ("before_ft", "after_ft")
    top1 = {w: _by_seed(rows, "top1_" + w) for w in when}
    macs = _by_seed(rows, "macs_ratio")
    out = []
    for model, ratio, method in sorted(macs):
        group = (model, ratio, method)
        entry = {
            "model": model,
            "target_ratio": ratio or None,
            "method": method,
            "macs_ratio": mean_ci(list(macs[group].values())),
            **{w: mean_ci(list(top1[w][group].values())) for w in when},
        }
        ref = {"cosep_budget": "l1", "cosep_knee": "l1_at_knee"}.get(method)
        if ref:
            for w in when:
                entry[f"minus_l1_{w}"] = _paired(top1[w][group], top1[w].get((model, ratio, ref), {}))
        out.append(entry)
    dense: dict[str, dict[int, float]] = {}
    for r in rows:
        dense.setdefault(r["model"], {})[r["seed"]] = r["dense_top1"]
    for model, by_seed in sorted(dense.items()):
        stat = mean_ci(list(by_seed.values()))
        one = mean_ci([1.0] * len(by_seed))
        out.append(
            {"model": model, "target_ratio": None, "method": "dense", "macs_ratio": one, **dict.fromkeys(when, stat)}
        )
    out.sort(key=lambda e: (e["model"], e["target_ratio"] or 0.0, e["method"] != "dense", e["method"]))
    return out


def paired_differences(rows: list[dict[str, Any]], when: str = "after_ft") -> list[dict[str, Any]]:
    """Per (model, ratio) and pair in :data:`PAIRS`: mean and 95% interval of ``a - b`` over the seeds both ran."""
    by = _by_seed([r for r in rows if r["target_ratio"]], "top1_" + when)
    out = []
    for model, ratio in sorted({(m, t) for m, t, _ in by}):
        for a, b in PAIRS:
            if (model, ratio, a) in by and (model, ratio, b) in by:
                stat = _paired(by[model, ratio, a], by[model, ratio, b])
                out.append({"model": model, "target_ratio": ratio, "a": a, "b": b, "when": when, **stat})
    return out


def paired_table(pairs: list[dict[str, Any]]) -> list[str]:
    """Markdown: one row per (model, ratio), one column per pair; a difference whose interval excludes 0 in bold."""
    by = {(p["model"], p["target_ratio"], p["a"], p["b"]): p for p in pairs}
    lines = [
        "| model | target | " + " | ".join(f"{a} - {b}" for a, b in PAIRS) + " |",
        "|---|---|" + "---|" * len(PAIRS),
    ]
    for model, ratio in sorted({(p["model"], p["target_ratio"]) for p in pairs}):
        cells = []
        for a, b in PAIRS:
            cells.append(fmt_difference(by.get((model, ratio, a, b))))
        lines.append(f"| {model} | {ratio:g}x | " + " | ".join(cells) + " |")
    return lines


VERDICT_PAIRS = (
    ("cosep_budget", "l1"),
    ("cosep_budget", "random_clusters"),
    ("cosep_paper", "cosep_budget"),
    ("uniform", "cosep_budget"),
)


def verdict_table(results: list[dict[str, Any]]) -> list[str]:
    """One markdown row per model, setting and MACs target over several result files: the seeds measured
    ("partial" while a run is still adding seeds), dense and CoSeP-budget top-1 after fine-tuning, and the
    paired differences that say where CoSeP wins, ties or loses."""
    lines = [
        "| model | setting | MACs | seeds | dense | CoSeP budget | "
        + " | ".join(f"{a} - {b}" for a, b in VERDICT_PAIRS)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(VERDICT_PAIRS),
    ]
    for result in results:
        per_class = result.get("args", {}).get("train_per_class", "None")
        setting = "full data" if per_class in (None, "None") else f"{per_class} per class"
        summary = summarize(result["rows"])
        by = {(p["model"], p["target_ratio"], p["a"], p["b"]): p for p in paired_differences(result["rows"])}
        complete = result.get("complete", True)
        partial = "" if complete else " (partial)"
        for e in summary:
            if e["method"] != "cosep_budget":
                continue
            model, ratio = e["model"], e["target_ratio"]
            dense = next(d["after_ft"] for d in summary if d["model"] == model and d["method"] == "dense")
            seeds = len({r["seed"] for r in result["rows"] if r["model"] == model})
            cells = [
                f"{seeds}{partial}",
                f"{100 * dense['mean']:.1f}",
                fmt_stat(e["after_ft"], digits=1),
                *(fmt_difference(by.get((model, ratio, a, b)), digits=1, bold=complete) for a, b in VERDICT_PAIRS),
            ]
            lines.append(f"| {model} | {setting} | {ratio:g}x | " + " | ".join(cells) + " |")
    return lines


def fmt_difference(stat: dict[str, Any] | None, digits: int = 2, bold: bool = True) -> str:
    """:func:`fmt_stat` of a paired difference, in bold (unless ``bold`` is false: a run still adding seeds, where
    two equal differences give an interval of width 0) when its 95% interval excludes 0."""
    ci = stat["ci95"] if stat else None
    text = fmt_stat(stat, digits=digits)
    return f"**{text}**" if bold and ci and (ci[0] > 0 or ci[1] < 0) else text


def fmt_stat(stat: dict[str, Any] | None, scale: float = 100.0, digits: int = 2) -> str:
    """``mean [low, high]`` of a :func:`mean_ci` record, scaled (100: a fraction as percent); ``-`` if absent."""
    if not stat or stat.get("mean") is None:
        return "-"
    if stat["ci95"] is None:
        return f"{scale * stat['mean']:.{digits}f}"
    lo, hi = stat["ci95"]
    return f"{scale * stat['mean']:.{digits}f} [{scale * lo:.{digits}f}, {scale * hi:.{digits}f}]"


def table(summary: list[dict[str, Any]]) -> list[str]:
    lines = [
        (
            "| model | target | method | MACs ratio | top-1 before FT (BN recal.) | top-1 after FT "
            "| CoSeP - L1 before | CoSeP - L1 after |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        target = f"{e['target_ratio']:g}x" if e["target_ratio"] else "own"
        lines.append(
            f"| {e['model']} | {target} | {e['method']} | {fmt_stat(e['macs_ratio'], 1.0)} | "
            f"{fmt_stat(e['before_ft'])} | {fmt_stat(e['after_ft'])} | "
            f"{fmt_stat(e.get('minus_l1_before_ft'))} | {fmt_stat(e.get('minus_l1_after_ft'))} |"
        )
    return lines


def _plot(summary: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = [e for e in summary if e["target_ratio"]]
    models = sorted({e["model"] for e in budget})
    fig, axes = plt.subplots(1, max(len(models), 1), figsize=(6 * max(len(models), 1), 4), squeeze=False)
    for ax, model in zip(axes[0], models, strict=False):
        for method in sorted({e["method"] for e in budget if e["model"] == model}):
            pts = sorted(
                (e["target_ratio"], e["after_ft"]) for e in budget if e["model"] == model and e["method"] == method
            )
            xs = [p[0] for p in pts]
            ys = [100 * p[1]["mean"] for p in pts]
            err = [
                [100 * (p[1]["mean"] - p[1]["ci95"][0]) if p[1]["ci95"] else 0 for p in pts],
                [100 * (p[1]["ci95"][1] - p[1]["mean"]) if p[1]["ci95"] else 0 for p in pts],
            ]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=method)
        dense = next((e["after_ft"]["mean"] for e in summary if e["model"] == model and e["method"] == "dense"), None)
        if dense is not None:
            ax.axhline(100 * dense, color="black", linestyle="--", linewidth=1, label="dense")
        ax.set_title(model)
        ax.set_xlabel("MACs ratio (dense / pruned)")
        ax.set_ylabel("top-1 after fine-tuning (%)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet20"])
    parser.add_argument("--data", default="digits:size=32")
    parser.add_argument("--train-per-class", type=int, default=None, help="harder setting: N training images per class")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--ratios", type=float, nargs="+", default=[2.0, 3.0, 4.0])
    parser.add_argument(
        "--methods", nargs="+", default=list(BUDGET_METHODS[1:]), help="budget methods besides cosep_budget"
    )
    parser.add_argument("--epochs", type=int, default=15, help="dense training epochs")
    parser.add_argument("--lr", type=float, default=0.05, help="dense training learning rate")
    parser.add_argument("--finetune-epochs", type=int, default=8)
    parser.add_argument("--finetune-lr", type=float, default=0.02)
    parser.add_argument("--distill", type=float, default=0.0, help="KD weight from the dense model (0 = off)")
    parser.add_argument("--images-per-class", type=int, default=32)
    parser.add_argument("--bn-batches", type=int, default=4, help="BatchNorm recalibration batches (0 = off)")
    parser.add_argument("--out", type=Path, help="result JSON (markdown and plot beside it); needed unless --verdict")
    parser.add_argument(
        "--verdict",
        type=Path,
        nargs="+",
        help="only print the README's summary table (budget rows and key paired differences) of these results",
    )
    parser.add_argument(
        "--rerender", action="store_true", help="only re-derive the tables and plot from the rows already in --out"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows already in --out (same protocol), run only the (model, seed) pairs it lacks and "
        "continue a seed interrupted part-way",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        metavar="MINUTES",
        help="stop once this many minutes have passed, after the dense model or row in progress (what is done is "
        "kept; --resume continues)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.verdict:
        print("\n".join(verdict_table([json.loads(p.read_text()) for p in args.verdict])))
        return 0
    if args.out is None:
        print("error: --out is needed (or --verdict FILE ...)", file=sys.stderr)
        return 2
    if args.rerender:
        print("\n".join(render(args.out, json.loads(args.out.read_text()))))
        return 0
    bundle = load_dataset(args.data)
    if bundle.is_synthetic:
        print("refusing: accuracy comparisons need real data, not a synthetic set", file=sys.stderr)
        return 2
    train_set = bundle.train
    if args.train_per_class:
        train_set = ClassBalancedSubset(bundle.train, args.train_per_class, seed=12345)
        # statistics come from the training images there are: no more per class than the split holds
        args.images_per_class = min(args.images_per_class, args.train_per_class)
    start = time.perf_counter()
    args.deadline = None if args.time_limit is None else start + 60.0 * args.time_limit
    rows: list[dict[str, Any]] = []
    earlier_seconds = 0.0
    if args.resume:
        try:
            rows, earlier_seconds = _resumed(args)
        except ResumeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    have = {(r["model"], r["seed"]) for r in rows}
    todo = [(m, s) for m in args.models for s in args.seeds if (m, s) not in have]
    if not todo:
        print(f"nothing to run: every (model, seed) asked for is already in {args.out}")
        return 0
    for i, (model_name, seed) in enumerate(todo):
        try:
            seed_rows, carried = _one_seed(args, model_name, seed, bundle, train_set)
        except ResumeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except TimeUp:
            where = _partial_dir(args.out, model_name, seed)
            print(f"time limit reached: {model_name} seed {seed} is part-done in {where}; --resume continues it")
            return 0
        rows += seed_rows
        earlier_seconds += carried
        lines = _write(args, argv, bundle, rows, start - earlier_seconds, complete=i == len(todo) - 1)
        _drop_partial(args.out, model_name, seed)
        if i < len(todo) - 1 and _time_is_up(args):
            print(f"time limit reached after {model_name} seed {seed}; --resume runs the rest")
            return 0
    print("\n".join(lines))
    return 0


# The arguments that define what a row measured: rows from runs that differ in any of them are not comparable.
PROTOCOL_ARGS = (
    "data",
    "train_per_class",
    "ratios",
    "methods",
    "epochs",
    "lr",
    "finetune_epochs",
    "finetune_lr",
    "distill",
    "images_per_class",
    "bn_batches",
)


def _resumed(args: argparse.Namespace) -> tuple[list[dict[str, Any]], float]:
    """The rows (and seconds) already in ``args.out`` when they were measured with the same protocol; a
    ResumeError naming the differences when they were not, so that a resumed result never mixes protocols."""
    if not args.out.exists():
        return [], 0.0
    saved = json.loads(args.out.read_text())
    # results written before an argument existed were measured with its default
    there = {**{k: str(v) for k, v in vars(parse_args(["--out", str(args.out)])).items()}, **saved.get("args", {})}
    differ = [k for k in PROTOCOL_ARGS if there[k] != str(getattr(args, k))]
    if differ:
        got = ", ".join(f"{k} {there[k]} there, {getattr(args, k)} now" for k in differ)
        raise ResumeError(f"cannot resume {args.out}: it was measured with another protocol ({got})")
    return list(saved["rows"]), float(saved.get("seconds", 0.0))


def _drop_partial(out: Path, model_name: str, seed: int) -> None:
    """The seed is in --out now: its part-done folder (and the parent, once empty) goes."""
    where = _partial_dir(out, model_name, seed)
    shutil.rmtree(where, ignore_errors=True)
    if where.parent.is_dir() and not any(where.parent.iterdir()):
        where.parent.rmdir()


def _write(
    args: argparse.Namespace,
    argv: list[str] | None,
    bundle: Any,
    rows: list[dict[str, Any]],
    start: float,
    *,
    complete: bool,
) -> list[str]:
    """JSON, markdown and plot of the rows so far (after every model and seed; ``complete`` after the last)."""
    result = {
        **run_record("compare_methods.py", args, argv, start),
        "data": bundle.description
        + (f"; {args.train_per_class} training images per class" if args.train_per_class else ""),
        "validation_images": len(bundle.val),
        "complete": complete,
        "rows": rows,
    }
    return render(args.out, result)


def render(out: Path, result: dict[str, Any]) -> list[str]:
    """Derive the summary, paired differences and tables from ``result["rows"]``; write JSON, markdown, plot.
    A result without ``complete`` predates the per-seed writes, which wrote only once, at the end."""
    rows = result["rows"]
    summary = summarize(rows)
    lines = table(summary)
    pairs = paired_differences(rows)
    done = sorted({(r["model"], r["seed"]) for r in rows})
    result.update(done=[list(d) for d in done], summary=summary, paired_after_ft=pairs, table_md="\n".join(lines))
    out.parent.mkdir(parents=True, exist_ok=True)
    _plot(summary, out.with_suffix(".png"))
    partial = [] if result.setdefault("complete", True) else [f"Partial: (model, seed) done {done}.", ""]
    md = [
        f"Command: `{result['command']}`",
        "",
        f"Data: {result['data']}; {result['validation_images']} validation images.",
        "",
        *partial,
        *lines,
        "",
        "Paired differences of top-1 after fine-tuning (points, same seed and MACs target; bold: the 95% interval",
        "excludes 0). cosep_budget - l1 and - random_clusters compare selection at identical counts; cosep_paper",
        "and uniform differ from cosep_budget in the per-group allocation.",
        "",
        *paired_table(pairs),
    ]
    write_results(out, result, md)
    return lines


def run_record(script: str, args: argparse.Namespace, argv: list[str] | None, start: float) -> dict[str, Any]:
    """What every bench result starts with: the command, its arguments, seconds so far, the machine."""
    return {
        "command": f"python bench/{script} " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": {k: str(v) for k, v in vars(args).items()},
        "seconds": round(time.perf_counter() - start, 1),
        "environment": describe_environment(),
    }


def write_results(out: Path, result: dict[str, Any], md: list[str]) -> None:
    """``result`` as JSON at ``out`` and ``md`` beside it (``.md``), each written atomically."""
    from cosep_deploy.artifacts import atomic_write_text

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=2, default=str) + "\n")
    atomic_write_text(out.with_suffix(".md"), "\n".join(md) + "\n")


if __name__ == "__main__":
    sys.exit(main())
