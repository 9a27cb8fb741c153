"""Every torchvision classification model through CoSeP statistics, surgery, plan save/load, ONNX export
and ONNX Runtime parity (random weights, small input, synthetic class-structured data). Writes JSON and a
markdown table (the README's list of passes and refusals).

Usage: python bench/torchvision_coverage.py --out bench/results/torchvision_coverage.json [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import torch

from bench.compare_methods import run_record
from cosep_deploy.models.coverage import CoverageResult, check_model
from cosep_deploy.models.external import torchvision_names


def _write(args: argparse.Namespace, argv: list[str] | None, start: float, results: list[dict[str, object]]) -> None:
    lines = ["| model | result | seconds | note |", "|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['status']} | {r['wall_seconds']} | {r['reason'] or ''} |" for r in results]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    body = {**run_record("torchvision_coverage.py", args, argv, start), "results": results}
    args.out.write_text(json.dumps(body, indent=2) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    results = []
    start = time.perf_counter()
    for name in args.only or torchvision_names():
        t0 = time.perf_counter()
        try:
            res = check_model(name, image_size=args.image_size, export=not args.no_export)
        except Exception as exc:  # a crash is what this script exists to find: record it, go on
            traceback.print_exc()
            res = CoverageResult(name, "fail", f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        results.append({**res.to_json(), "wall_seconds": round(time.perf_counter() - t0, 1)})
        print(f"{name}: {res.status} {res.reason or ''}", flush=True)
        _write(args, argv, start, results)  # after every model: a long run that is stopped still leaves its results
    return 1 if any(r["status"] == "fail" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
