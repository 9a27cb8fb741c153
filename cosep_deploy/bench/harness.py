"""Interleaved, same-settings timing of several engines (dense vs pruned) on one backend.

Fairness rules: every runner must report the same comparable settings (backend, runtime version, device,
precision, threads...), or the comparison is refused; runs are interleaved in ABBA order so drift and
thermal effects hit all engines alike; each engine is warmed up first; per-iteration times are kept.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..artifacts import JsonArtifact
from ..backends.base import Runner
from ..errors import BenchError, ConfigError
from ..progress import Progress, resolve_progress
from .environment import describe_environment
from .stats import speedup_with_ci, summarize

__all__ = ["BenchConfig", "BenchReport", "bench_runners"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchConfig:
    batch_sizes: tuple[int, ...] = (1, 8)
    warmup: int = 10
    iterations: int = 50
    seed: int = 0
    bootstrap_resamples: int = 2000

    def __post_init__(self) -> None:
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise ConfigError(f"batch sizes must be positive integers, got {self.batch_sizes}")
        if self.iterations < 5:
            raise ConfigError(f"at least 5 timed iterations are needed, got {self.iterations}")
        if self.warmup < 0:
            raise ConfigError(f"warm-up iterations must be >= 0, got {self.warmup}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchReport(JsonArtifact):
    """Per engine and batch size: summary statistics and raw per-iteration times; speed-ups vs baseline."""

    _schema = "BenchReport"
    _schema_version = 1

    baseline: str
    engines: dict[str, Any]  # name -> {"info": ..., "macs": ..., "results": {batch: summary}}
    speedups: dict[str, Any]  # name -> {batch: {speedup, ci_low, ci_high, latency_efficiency?}}
    settings: dict[str, Any]
    config: dict[str, Any]
    environment: dict[str, Any]
    input_shape: list[int]
    seconds: float


def _check_shapes(infos: Mapping[str, Any], input_shape: Sequence[int]) -> None:
    """Every engine must take one image of ``input_shape`` (dims after the batch dimension)."""
    want = [int(d) for d in input_shape]
    for name, info in infos.items():
        for tensor, shape in dict(info.input_shapes).items():
            dims = list(shape[1:])
            fixed = [d for d in dims if isinstance(d, int)]
            if len(dims) != len(want) or fixed != [w for d, w in zip(dims, want, strict=True) if isinstance(d, int)]:
                expected = ", ".join(map(str, want))
                raise BenchError(
                    f"engine {name!r} input {tensor!r} has shape {list(shape)}, not [batch, {expected}]: "
                    "engines built for different input shapes cannot be compared"
                )


def _check_comparable(runners: Mapping[str, Runner], input_shape: Sequence[int]) -> dict[str, Any]:
    infos = {name: r.info() for name, r in runners.items()}
    _check_shapes(infos, input_shape)
    names = list(infos)
    ref = infos[names[0]].comparable_settings()
    for name in names[1:]:
        other = infos[name].comparable_settings()
        if other != ref:
            diff = {k: (ref.get(k), other.get(k)) for k in set(ref) | set(other) if ref.get(k) != other.get(k)}
            raise BenchError(
                f"engines {names[0]!r} and {name!r} were set up differently ({diff}); a fair comparison needs "
                "the same backend, runtime, device, precision and settings"
            )
    return ref


def bench_runners(
    runners: Mapping[str, Runner],
    input_shape: Sequence[int],
    config: BenchConfig | None = None,
    *,
    baseline: str | None = None,
    macs: Mapping[str, int] | None = None,
    input_name: str | None = None,
    progress: Progress | None = None,
) -> BenchReport:
    """Time every runner at every batch size, interleaved, and compute speed-ups against ``baseline``.

    ``input_shape`` is one image's shape (C, H, W). Runners must already be active (entered).
    ``macs`` (per engine) adds the latency efficiency = measured speed-up / MACs ratio.
    """
    cfg = config or BenchConfig()
    if len(runners) < 1:
        raise BenchError("nothing to benchmark: give at least one engine")
    names = list(runners)
    base = baseline or names[0]
    if base not in runners:
        raise BenchError(f"baseline {base!r} is not among the engines {names}")
    settings = _check_comparable(runners, input_shape)
    prog = resolve_progress(progress)
    rng = np.random.default_rng(cfg.seed)
    start = time.perf_counter()
    times: dict[str, dict[int, list[float]]] = {n: {} for n in names}
    total = len(cfg.batch_sizes) * (cfg.warmup + cfg.iterations) * len(names)
    with prog.task("benchmarking " + " vs ".join(names), total=total) as task:
        for batch in cfg.batch_sizes:
            feeds = {}
            for n in names:
                key = input_name or runners[n].info().input_names[0]
                feeds[n] = {key: rng.standard_normal((batch, *input_shape), dtype=np.float32)}
            for n in names:
                for _ in range(cfg.warmup):
                    runners[n].time_once(feeds[n])
                    task.advance()
            for n in names:
                times[n][batch] = []
            for i in range(cfg.iterations):
                order = names if i % 2 == 0 else names[::-1]  # ABBA: neither engine always runs first
                for n in order:
                    times[n][batch].append(runners[n].time_once(feeds[n]).seconds)
                    task.advance()
    engines: dict[str, Any] = {}
    for n in names:
        info = runners[n].info()
        engines[n] = {
            "info": dataclasses.asdict(info),
            "macs": (macs or {}).get(n),
            "results": {
                str(b): {**summarize(times[n][b], b), "times_ms": [t * 1e3 for t in times[n][b]]}
                for b in cfg.batch_sizes
            },
        }
    speedups: dict[str, Any] = {}
    for n in names:
        if n == base:
            continue
        per_batch = {}
        for b in cfg.batch_sizes:
            s = speedup_with_ci(times[base][b], times[n][b], resamples=cfg.bootstrap_resamples, seed=cfg.seed)
            if macs and macs.get(base) and macs.get(n):
                ratio = macs[base] / macs[n]
                s["macs_ratio"] = ratio
                s["latency_efficiency"] = s["speedup"] / ratio
            per_batch[str(b)] = s
        speedups[n] = per_batch
    return BenchReport(
        baseline=base,
        engines=engines,
        speedups=speedups,
        settings=settings,
        config=dataclasses.asdict(cfg),
        environment=describe_environment(),
        input_shape=[int(d) for d in input_shape],
        seconds=round(time.perf_counter() - start, 3),
    )
