"""Start-up time of the CLI: ``cosep-deploy --help`` and every command's ``--help``, each in a fresh
interpreter, as users feel it (median of repeated runs). Writes a JSON result.

    python bench/cli_startup.py --repeat 15 --out bench/results/cli_startup_cpu2.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cosep_deploy.bench.environment import describe_environment
from cosep_deploy.cli.main import cli


def _time_help(args: list[str], repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cosep_deploy", *args, "--help"], check=True, capture_output=True)
        runs.append(time.perf_counter() - start)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--goal", type=float, default=0.5, help="seconds; the target for every median")
    parser.add_argument("--out", type=Path, default=None)
    opts = parser.parse_args()
    rows = {}
    for command in ["", *sorted(cli.commands)]:
        runs = _time_help([command] if command else [], opts.repeat)
        rows[command or "(cli)"] = {"median_s": statistics.median(runs), "max_s": max(runs), "runs": opts.repeat}
        print(f"{command or '(cli)':>10} --help  median {rows[command or '(cli)']['median_s']:.3f} s")
    worst = max(r["median_s"] for r in rows.values())
    result = {
        "what": "wall time of `python -m cosep_deploy [COMMAND] --help` in a fresh interpreter",
        "goal_s": opts.goal,
        "worst_median_s": worst,
        "meets_goal": worst < opts.goal,
        "commands": rows,
        "python": platform.python_version(),
        "environment": describe_environment(),
    }
    if opts.out is not None:
        opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"worst median {worst:.3f} s (goal {opts.goal} s): {'met' if worst < opts.goal else 'MISSED'}")


if __name__ == "__main__":
    main()
