"""Benchmark harness: fair, interleaved timing of dense vs pruned engines, statistics, reports.

The config (:mod:`.config`) has no heavy import, so the CLI can read its defaults at start-up; the harness and
statistics are imported on first use of their names.
"""

from typing import Any

from cosep_deploy.bench.config import BenchConfig

__all__ = ["BenchConfig", "BenchReport", "bench_runners", "speedup_with_ci", "summarize"]

_LAZY = {
    "BenchReport": "cosep_deploy.bench.harness",
    "bench_runners": "cosep_deploy.bench.harness",
    "speedup_with_ci": "cosep_deploy.bench.stats",
    "summarize": "cosep_deploy.bench.stats",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
