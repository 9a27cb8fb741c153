"""Are CoSeP's per-group decisions stable, and do they mean something? (issue 15's acceptance on the demo)

Prunes a run's trained dense model with CoSeP at several seeds (the seed draws the class-balanced
statistics sample and seeds k-medoids), first with ``round_to 1``, then with an alignment, and checks:
- across seeds no group's chosen k moves by more than a quarter of its channels;
- no decision falls back to keeping (nearly) all channels (k >= N - 1);
- no group lands at k = 2, at the midpoint of [2, N - 1] or at N - 2 or more unless a keep-ratio bound set it;
- with ``round_to 1`` kept = k in every group; with the alignment, (kept - k) / kept <= 0.25.
Writes JSON and markdown; exits 1 when a check fails.

Usage (the demo's model):
  cosep-deploy train --run runs/demo --data digits:size=32
  python bench/knee_stability.py --run runs/demo --out bench/results/knee_stability_digits32_resnet20.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from cosep_deploy.data import ClassBalancedSubset, make_loader
from cosep_deploy.pipeline.stages import data_for_run, load_dense, load_run_spec
from cosep_deploy.prune import PruneConfig, prune


def _problems(groups: list[dict[str, Any]]) -> list[str]:
    out = []
    for g in groups:
        n, k, knee = g["size"], g["k"], g.get("knee") or {}
        bound = knee.get("bound")
        if k >= n - 1:
            out.append(f"{g['root']}: keeps (nearly) every channel (k = {k} of {n})")
        mid = {(2 + n - 1) // 2, (2 + n) // 2}
        if bound is None and (k == 2 or k in mid or k >= n - 2):
            out.append(f"{g['root']}: k = {k} of {n} (2, midpoint or >= N-2) without a keep-ratio bound")
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    spec = load_run_spec(args.run)
    model, _ = load_dense(args.run)
    bundle = data_for_run(spec)
    example = torch.zeros((2, *bundle.input_shape))
    by_seed: dict[int, list[dict[str, Any]]] = {}
    aligned: dict[int, list[dict[str, Any]]] = {}
    for seed in args.seeds:
        loader = make_loader(ClassBalancedSubset(bundle.train, args.images_per_class, seed=seed), batch_size=128)
        for round_to, store in ((1, by_seed), (args.round_to, aligned)):
            cfg = PruneConfig(
                seed=seed, round_to=round_to, knee_rule=args.knee_rule, images_per_class=args.images_per_class
            )
            _, plan = prune(model, loader, example_inputs=example, config=cfg)
            store[seed] = plan.groups
            print(f"seed {seed} round_to {round_to}: MACs {plan.macs_ratio:.2f}x", flush=True)
    roots = [g["root"] for g in by_seed[args.seeds[0]]]
    rows, problems = [], []
    for i, root in enumerate(roots):
        ks = [by_seed[s][i]["k"] for s in args.seeds]
        n = by_seed[args.seeds[0]][i]["size"]
        spread = max(ks) - min(ks)
        if spread > n / 4:
            problems.append(f"{root}: k moves by {spread} > N/4 = {n / 4:g} across seeds ({ks})")
        bounds = [by_seed[s][i]["knee"]["bound"] if by_seed[s][i].get("knee") else None for s in args.seeds]
        kept_aligned = [aligned[s][i]["n_kept"] for s in args.seeds]
        rows.append({"root": root, "size": n, "k": ks, "bound": bounds, "kept_aligned": kept_aligned})
    for s in args.seeds:
        problems += [f"seed {s}: {p}" for p in _problems(by_seed[s])]
        problems += [
            f"seed {s}: {g['root']} kept {g['n_kept']} != k {g['k']}" for g in by_seed[s] if g["n_kept"] != g["k"]
        ]
        for g in aligned[s]:
            if (g["n_kept"] - g["k"]) / g["n_kept"] > 0.25:
                problems.append(f"seed {s}: {g['root']} alignment adds {g['n_kept'] - g['k']} to k = {g['k']}")
    return {"args": {k: str(v) for k, v in vars(args).items()}, "groups": rows, "problems": problems, "plans": by_seed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="run directory with a trained dense model")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--round-to", type=int, default=8, help="the alignment checked besides round_to 1")
    parser.add_argument("--knee-rule", default="robust", choices=["robust", "paper"])
    parser.add_argument("--images-per-class", type=int, default=32)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = run(args)
    seeds = " / ".join(f"seed {s}" for s in args.seeds)
    lines = [f"| group | N | k ({seeds}) | bound | kept at round_to {args.round_to} |", "|---|---|---|---|---|"]
    for r in result["groups"]:
        bounds = ", ".join(str(b) for b in r["bound"] if b) or "-"
        lines.append(
            f"| `{r['root']}` | {r['size']} | {' / '.join(map(str, r['k']))} | {bounds} | "
            f"{' / '.join(map(str, r['kept_aligned']))} |"
        )
    lines.append("")
    lines.append("checks: " + ("all pass" if not result["problems"] else "; ".join(result["problems"])))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
