"""Benchmark harness: fair, interleaved timing of dense vs pruned engines, statistics, reports."""

from cosep_deploy.bench.harness import BenchConfig, BenchReport, bench_runners
from cosep_deploy.bench.stats import speedup_with_ci, summarize

__all__ = ["BenchConfig", "BenchReport", "bench_runners", "speedup_with_ci", "summarize"]
