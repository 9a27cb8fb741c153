"""Speed and memory of the separability stage at ImageNet and CIFAR scale, on synthetic statistics.

Sections (each timed, peak RSS recorded):
  imagenet  ResNet-50 channel groups with C = 1000 classes: profile_distances over all 499,500 class pairs
            (no sampling) + select_channels(k_grid="auto") per group. Targets: < 10 min, < 4 GB.
  cifar100  VGG-16 conv widths with C = 100. Target: < 60 s.
  paper     select_channels(k_grid="all") on one 512-channel layer (the paper's every-k sweep). < 30 s.
  collect   collect_class_stats overhead over a plain forward pass (torchvision ResNet-18, CPU, gap).

Usage: python bench/separability_scale.py --out runs/separability_scale.json [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import torch

from cosep_deploy.separability import (
    collect_class_stats,
    combine_distances,
    profile_distances,
    resolve_taps,
    select_channels,
)

__all__ = ["main", "resnet50_groups", "synthetic_stats", "vgg16_groups"]

TARGETS_S = {"imagenet": 600.0, "cifar100": 60.0, "paper": 30.0}
TARGET_RSS_MB = 4096.0


def resnet50_groups() -> list[tuple[str, int, int]]:
    """One selection per prunable group of torchvision ResNet-50 (stem and classifier excluded).

    Inside each bottleneck, conv1 and conv2 are groups of their own; every stage's conv3 outputs and its
    downsample are tied by the residual adds, so they form one group of the stage's output width (in a
    real run that group's distance matrix combines its members' profiles; here one profile stands for it
    unless --coupled-members is given). Items: (name, output channels, members).
    """
    groups = []
    for stage, (width, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=1):
        for b in range(blocks):
            groups += [(f"layer{stage}.{b}.conv1", width, 1), (f"layer{stage}.{b}.conv2", width, 1)]
        groups.append((f"layer{stage}.*.conv3+downsample (residual)", 4 * width, blocks + 1))
    return groups


def vgg16_groups() -> list[tuple[str, int, int]]:
    widths = [64, 64, 128, 128, 256, 256, 256] + [512] * 6
    return [(f"features.conv{i}", w, 1) for i, w in enumerate(widths)]


def synthetic_stats(c: int, n: int, seed: int, structure: int | None = None) -> tuple[np.ndarray, ...]:
    """Per-class mean/var [C, N] with planted structure, and L1 filter norms [N].

    Channels are noisy affine copies of N/4 prototype channels (JM is invariant to an affine map, so
    copies have near-identical profiles), and prototypes differ in how many classes they separate.
    ``structure`` seeds which channels copy which prototype: coupled members share it.
    """
    rng = np.random.default_rng(seed)
    protos = max(2, n // 4)
    assign = np.random.default_rng(seed if structure is None else structure).integers(0, protos, size=n)
    spread = rng.uniform(0.2, 3.0, size=protos)  # how far apart the class means of a prototype are
    p_mean = rng.normal(size=(c, protos)) * spread
    p_var = np.exp(rng.normal(scale=0.3, size=(c, protos)))
    scale = rng.uniform(0.5, 2.0, size=n)
    mean = p_mean[:, assign] * scale + rng.normal(size=n) + 0.05 * rng.normal(size=(c, n))
    var = p_var[:, assign] * scale**2 * np.exp(0.05 * rng.normal(size=(c, n)))
    return mean, var, rng.uniform(1.0, 10.0, size=n)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _run_groups(
    name: str,
    groups: list[tuple[str, int, int]],
    classes: int,
    seed: int,
    log: Callable[[str], None],
    *,
    members: bool = False,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for i, (gname, n, m) in enumerate(groups):
        m = m if members else 1
        stats = [synthetic_stats(classes, n, seed + 1000 * j + i, structure=seed + i) for j in range(m)]
        norms = sum(s[2] for s in stats)
        t0 = time.perf_counter()
        dists = [profile_distances(mean, var) for mean, var, _ in stats]
        dist = dists[0]
        matrix = dist.distances if m == 1 else combine_distances([d.distances for d in dists])
        t1 = time.perf_counter()
        sel = select_channels(matrix, norms, k_grid="auto", seed=seed)
        t2 = time.perf_counter()
        rows.append(
            {
                "group": gname,
                "channels": n,
                "members": m,
                "pairs": dist.pairs_used,
                "sampled": dist.sampled,
                "profile_s": round(t1 - t0, 3),
                "select_s": round(t2 - t1, 3),
                "k": sel.k,
                "n_kept": sel.n_kept,
                "grid": sel.grid,
                "k_evaluated": len(sel.curve),
                "fallback": sel.fallback,
            }
        )
        log(
            f"  {name:9s} {gname:40s} N={n:5d} x{m} profile {t1 - t0:7.2f}s select {t2 - t1:6.2f}s "
            f"k={sel.k} ({sel.grid}, {len(sel.curve)} k)"
        )
    total = time.perf_counter() - start
    return {
        "classes": classes,
        "groups": rows,
        "total_s": round(total, 2),
        "profile_s": round(sum(r["profile_s"] for r in rows), 2),
        "select_s": round(sum(r["select_s"] for r in rows), 2),
        "peak_rss_mb": round(_rss_mb(), 1),
    }


def _paper_sweep(n: int, classes: int, seed: int) -> dict[str, Any]:
    mean, var, norms = synthetic_stats(classes, n, seed)
    t0 = time.perf_counter()
    dist = profile_distances(mean, var)
    t1 = time.perf_counter()
    sel = select_channels(dist.distances, norms, k_grid="all", seed=seed)
    t2 = time.perf_counter()
    auto = select_channels(dist.distances, norms, k_grid="auto", seed=seed)
    t3 = time.perf_counter()
    return {
        "channels": n,
        "classes": classes,
        "profile_s": round(t1 - t0, 2),
        "sweep_s": round(t2 - t1, 2),
        "k_all": sel.k,
        "k_auto": auto.k,
        "auto_s": round(t3 - t2, 2),
        "k_evaluated": len(sel.curve),
        "total_s": round(t2 - t1, 2),
        "peak_rss_mb": round(_rss_mb(), 1),
    }


def _collect_overhead(batches: int, batch: int, size: int) -> dict[str, Any]:
    """Wall time of collect_class_stats (every BN, gap) over a plain no-grad forward of the same batches."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(weights=None, num_classes=100).eval()
    data = [(torch.randn(batch, 3, size, size), torch.randint(0, 100, (batch,))) for _ in range(batches)]
    convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    taps = sorted(set(resolve_taps(model, convs, point="bn").values()))
    plain, hooked = [], []
    for _ in range(5):  # interleaved repeats, best of each: on a shared machine single runs vary 5x
        with torch.no_grad():
            model(data[0][0])  # warm-up
            t0 = time.perf_counter()
            for x, _ in data:
                model(x)
            plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        collect_class_stats(model, data, taps, spatial="gap", num_classes=100)
        hooked.append(time.perf_counter() - t0)
    plain_s, hooked_s = min(plain), min(hooked)
    return {
        "model": "resnet18",
        "taps": len(taps),
        "batches": batches,
        "batch": batch,
        "input": size,
        "plain_s": round(plain_s, 3),
        "collect_s": round(hooked_s, 3),
        "overhead": round(hooked_s / plain_s - 1, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--quick", action="store_true", help="smaller run (C=100 for the ImageNet section)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--coupled-members",
        action="store_true",
        help="ResNet-50 residual groups: one profile per member conv, then combined",
    )
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, flush=True)

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "quick": args.quick,
        "coupled_members": args.coupled_members,
    }
    log(f"machine: {info['platform']}, {info['cpu_affinity']} cpus, torch threads {info['torch_threads']}")
    report: dict[str, Any] = {
        "machine": info,
        "groups_resnet50": [{"group": g, "channels": n, "members": m} for g, n, m in resnet50_groups()],
        "groups_note": (resnet50_groups.__doc__ or "").split("\n\n")[1].strip().replace("\n    ", " "),
        "statistics": "synthetic (see synthetic_stats); profile_distances in float64, all class pairs",
    }
    classes = 100 if args.quick else 1000
    report["imagenet"] = _run_groups(
        "imagenet", resnet50_groups(), classes, args.seed, log, members=args.coupled_members
    )
    report["cifar100"] = _run_groups("cifar100", vgg16_groups(), 100, args.seed, log)
    report["paper"] = _paper_sweep(256 if args.quick else 512, 100, args.seed)
    report["collect"] = _collect_overhead(3 if args.quick else 8, 32, 64 if args.quick else 112)
    report["peak_rss_mb"] = round(_rss_mb(), 1)
    checks = {
        sec: {"seconds": report[sec]["total_s"], "target_s": t, "ok": report[sec]["total_s"] < t}
        for sec, t in TARGETS_S.items()
    }
    checks["memory"] = {
        "peak_rss_mb": report["peak_rss_mb"],
        "target_mb": TARGET_RSS_MB,
        "ok": report["peak_rss_mb"] < TARGET_RSS_MB,
    }
    report["targets"] = checks
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))

    log("")
    log(f"{'section':10s} {'seconds':>9s} {'target':>8s}  ok   detail")
    for sec in TARGETS_S:
        r = report[sec]
        detail = (
            f"profile {r['profile_s']}s + select {r['select_s']}s, C={r['classes']}"
            if "groups" in r
            else f"N={r['channels']}: sweep {r['sweep_s']}s, k_all={r['k_all']} k_auto={r['k_auto']}"
        )
        ok = "yes" if checks[sec]["ok"] else "NO "
        log(f"{sec:10s} {r['total_s']:9.1f} {TARGETS_S[sec]:8.0f}  {ok}  {detail}")
    c = report["collect"]
    log(
        f"{'collect':10s} {c['collect_s']:9.2f} {'':8s}       plain forward {c['plain_s']}s, "
        f"overhead {100 * c['overhead']:.1f}% ({c['taps']} taps)"
    )
    log(f"peak RSS {report['peak_rss_mb']:.0f} MB (target < {TARGET_RSS_MB:.0f})  ->  {args.out}")
    return 0 if all(v["ok"] for v in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
