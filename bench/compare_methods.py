"""CoSeP vs the baselines (l1, random, emp) at matched MACs, before and after fine-tuning, on real data.

Default: CIFAR ResNet-20 on scikit-learn's digits upscaled to 32x32 (real labelled images shipped with
scikit-learn). CoSeP chooses every group's width itself (MSS knee); ``l1`` and ``random`` keep the same
per-group counts (identical MACs); ``emp`` keeps its N_eff counts scaled by a global factor to the same
MACs ratio. Each pruned model is fine-tuned with the same schedule. Writes JSON and a markdown table.

Usage: python bench/compare_methods.py --out bench/results/methods_digits32_resnet20.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from cosep_deploy.bench.environment import describe_environment
from cosep_deploy.data import ClassBalancedSubset, load_dataset, make_loader
from cosep_deploy.finetune import TrainConfig, evaluate, train_model
from cosep_deploy.models import ModelSpec, build_model
from cosep_deploy.prune import PruneConfig, prune


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--data", default="digits:size=32")
    parser.add_argument("--epochs", type=int, default=15, help="dense training epochs")
    parser.add_argument("--finetune-epochs", type=int, default=12)
    parser.add_argument("--distill", type=float, default=0.5, help="KD weight from the dense model (0 = off)")
    parser.add_argument("--images-per-class", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    bundle = load_dataset(args.data)
    if bundle.is_synthetic:
        print("refusing: accuracy comparisons need real data, not a synthetic set", file=sys.stderr)
        return 2
    spec = ModelSpec(
        name=args.model,
        num_classes=bundle.num_classes,
        in_channels=bundle.input_shape[0],
        image_size=bundle.input_shape[1],
    )
    dense = build_model(spec, seed=args.seed)
    t0 = time.perf_counter()
    dense_result = train_model(dense, bundle.train, bundle.val, TrainConfig(epochs=args.epochs, seed=args.seed))
    print(f"dense {args.model}: top-1 {100 * dense_result.val_top1:.2f}% ({time.perf_counter() - t0:.0f} s)")
    val = make_loader(bundle.val, batch_size=256)
    loader = make_loader(ClassBalancedSubset(bundle.train, args.images_per_class, seed=args.seed), batch_size=128)
    example = torch.zeros((2, *bundle.input_shape))

    cosep_model, cosep_plan = prune(dense, loader, example_inputs=example, config=PruneConfig(seed=args.seed))
    counts = {g["root"]: g["n_kept"] for g in cosep_plan.groups}
    configs = {
        "l1": PruneConfig(method="l1", counts=counts, seed=args.seed),
        "random": PruneConfig(method="random", counts=counts, seed=args.seed),
        "emp": PruneConfig(method="emp", target_macs_ratio=cosep_plan.macs_ratio * 0.999, seed=args.seed),
    }
    rows: list[dict[str, Any]] = []
    candidates = {"cosep": (cosep_model, cosep_plan)}
    for name, cfg in configs.items():
        candidates[name] = prune(dense, loader, example_inputs=example, config=cfg)
    ft = TrainConfig(epochs=args.finetune_epochs, lr=0.02, seed=args.seed, distill_alpha=args.distill)
    for name, (model, plan) in candidates.items():
        before = evaluate(model, val)
        t0 = time.perf_counter()
        after = train_model(model, bundle.train, bundle.val, ft, teacher=dense if args.distill > 0 else None).val_top1
        rows.append(
            {
                "method": name,
                "macs": plan.cost_after["macs"],
                "params": plan.cost_after["params"],
                "macs_ratio": plan.macs_ratio,
                "top1_before_finetune": before,
                "top1_after_finetune": after,
                "finetune_seconds": time.perf_counter() - t0,
                "kept": {g["root"]: g["n_kept"] for g in plan.groups},
            }
        )
        print(
            f"{name:7s} MACs {plan.macs_ratio:.2f}x fewer: top-1 before fine-tuning {100 * before:6.2f}%, "
            f"after {100 * after:6.2f}%",
            flush=True,
        )
    table = [
        "| method | MACs (M) | MACs ratio | params (K) | top-1 before FT | top-1 after FT |",
        "|---|---|---|---|---|---|",
        f"| dense | {cosep_plan.cost_before['macs'] / 1e6:.2f} | 1.00x | {cosep_plan.cost_before['params'] / 1e3:.1f} "
        f"| {100 * dense_result.val_top1:.2f}% | - |",
    ]
    table += [
        f"| {r['method']} | {r['macs'] / 1e6:.2f} | {r['macs_ratio']:.2f}x | {r['params'] / 1e3:.1f} | "
        f"{100 * r['top1_before_finetune']:.2f}% | {100 * r['top1_after_finetune']:.2f}% |"
        for r in rows
    ]
    result = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "data": bundle.description,
        "dense": {
            "macs": cosep_plan.cost_before["macs"],
            "params": cosep_plan.cost_before["params"],
            "top1": dense_result.val_top1,
        },
        "methods": rows,
        "table_md": "\n".join(table),
        "environment": describe_environment(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
