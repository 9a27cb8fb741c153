"""Interleaved, same-settings timing of several engines (dense vs pruned) on one backend.

Fairness rules: every runner must report the same comparable settings (backend, runtime version, device,
precision, threads...), or the comparison is refused; runs are interleaved in ABBA order so drift and
thermal effects hit all engines alike; each engine is warmed up first, for at least ``warmup`` calls and
``warmup_seconds`` (trtexec's ``--warmUp``), at every batch size; per-iteration times are kept.

Two modes:
- ``latency`` (default): one request at a time. Each engine runs at least ``iterations`` times and for at
  least ``min_seconds`` of timed work per batch size (as trtexec's ``--iterations``/``--duration``), so fast
  models get many samples. The speed-up is the ratio of medians with a pair bootstrap interval (:mod:`.stats`).
- ``throughput``: ``streams`` threads issue requests back to back for ``round_seconds``; engines take turns
  over ``rounds`` rounds (ABBA). Images/s per round, request latency percentiles, and the speed-up as the
  ratio of median throughputs with a bootstrap interval over paired rounds. Needs runners that declare
  :attr:`~cosep_deploy.backends.base.Runner.concurrent_safe`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cosep_deploy.artifacts import JsonArtifact
from cosep_deploy.backends.base import Runner
from cosep_deploy.bench.config import BenchConfig
from cosep_deploy.bench.environment import describe_environment
from cosep_deploy.bench.schema import validate_bench_json
from cosep_deploy.bench.stats import paired_speedup, summarize
from cosep_deploy.errors import BenchError
from cosep_deploy.progress import Progress, resolve_progress

__all__ = ["BenchConfig", "BenchReport", "bench_report", "bench_runners", "speedups_against"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchReport(JsonArtifact):
    """Per engine and batch size: summary statistics and raw per-iteration times; speed-ups vs baseline."""

    _schema = "BenchReport"
    _schema_version = 2  # 2: mode, paired speed-ups, memory, min_seconds; version 1 files still load

    baseline: str
    engines: dict[str, Any]  # name -> {"info": ..., "macs": ..., "results": {batch: summary}}
    speedups: dict[str, Any]  # name -> {batch: {speedup, ci_low, ci_high, latency_efficiency?}}
    settings: dict[str, Any]
    config: dict[str, Any]
    environment: dict[str, Any]
    input_shape: list[int]
    seconds: float
    mode: str = "latency"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchReport:
        if data.get("schema") == cls.schema_name() and data.get("schema_version") == 1:
            data = {**data, "schema_version": cls.schema_version(), "mode": "latency"}  # v1: latency only
        return super().from_json(data)


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
    if cfg.mode == "throughput":
        serial = [n for n in names if not runners[n].concurrent_safe]
        if serial:
            raise BenchError(
                f"throughput mode drives an engine from {cfg.streams} threads at once, which the "
                f"{runners[serial[0]].info().backend} runner of {serial[0]!r} does not support; use --mode latency "
                "(for TensorRT, trtexec --streams measures multi-stream throughput)"
            )
    prog = resolve_progress(progress)
    rng = np.random.default_rng(cfg.seed)
    start = time.perf_counter()
    timed = _time_throughput if cfg.mode == "throughput" else _time_latency
    results: dict[str, dict[str, Any]] = {n: {} for n in names}
    series: dict[str, dict[int, list[float]]] = {n: {} for n in names}
    with prog.task("benchmarking " + " vs ".join(names), total=len(cfg.batch_sizes)) as task:
        for batch in cfg.batch_sizes:
            feeds = {}
            for n in names:
                key = input_name or runners[n].info().input_names[0]
                feeds[n] = {key: rng.standard_normal((batch, *input_shape), dtype=np.float32)}
            for n in names:
                _warm_up(runners[n], feeds[n], cfg)
            per_engine = timed(runners, feeds, batch, cfg)
            for n in names:
                results[n][str(batch)], series[n][batch] = per_engine[n]
            task.advance()
    engines: dict[str, Any] = {}
    for n in names:
        engines[n] = {
            "info": dataclasses.asdict(runners[n].info()),
            "macs": (macs or {}).get(n),
            "memory": runners[n].memory(),
            "results": results[n],
        }
    speedups = speedups_against(base, series, cfg, macs, higher_is_better=cfg.mode == "throughput")
    return bench_report(base, engines, speedups, settings, cfg, input_shape, start, mode=cfg.mode)


def speedups_against(
    base: str,
    series: Mapping[str, Mapping[int, Sequence[float]]],
    cfg: BenchConfig,
    macs: Mapping[str, int] | None,
    *,
    higher_is_better: bool = False,
) -> dict[str, Any]:
    """Every engine's speed-up over ``base`` per batch size, from interleaved per-iteration series: the ratio
    of medians with a pair bootstrap interval, and the latency efficiency (speed-up / MACs ratio) where MACs
    are known. Series are seconds per call (baseline over candidate) or, ``higher_is_better``, images/s."""
    speedups: dict[str, Any] = {}
    for n in series:
        if n == base:
            continue
        per_batch = {}
        for b in cfg.batch_sizes:
            pair = (series[n][b], series[base][b]) if higher_is_better else (series[base][b], series[n][b])
            s = paired_speedup(*pair, resamples=cfg.bootstrap_resamples, seed=cfg.seed)
            if macs and macs.get(base) and macs.get(n):
                s["macs_ratio"] = macs[base] / macs[n]
                s["latency_efficiency"] = s["speedup"] / s["macs_ratio"]
            per_batch[str(b)] = s
        speedups[n] = per_batch
    return speedups


def bench_report(
    base: str,
    engines: dict[str, Any],
    speedups: dict[str, Any],
    settings: dict[str, Any],
    cfg: BenchConfig,
    input_shape: Sequence[int],
    start: float,
    *,
    mode: str,
) -> BenchReport:
    """The report every benchmark path writes, validated against ``bench.schema.json`` before it is returned."""
    report = BenchReport(
        baseline=base,
        engines=engines,
        speedups=speedups,
        settings=settings,
        config=dataclasses.asdict(cfg),
        environment=describe_environment(),
        input_shape=[int(d) for d in input_shape],
        seconds=round(time.perf_counter() - start, 3),
        mode=mode,
    )
    validate_bench_json(report.to_json())
    return report


_Timed = dict[str, tuple[dict[str, Any], list[float]]]


def _warm_up(runner: Runner, feed: Mapping[str, Any], cfg: BenchConfig) -> None:
    """At least ``warmup`` calls and ``warmup_seconds`` (first-call allocations, caches, clock ramp-up)."""
    calls, start = 0, time.perf_counter()
    while calls < cfg.max_iterations and (calls < cfg.warmup or time.perf_counter() - start < cfg.warmup_seconds):
        runner.time_once(feed)
        calls += 1


def _time_latency(runners: Mapping[str, Runner], feeds: Mapping[str, Any], batch: int, cfg: BenchConfig) -> _Timed:
    """ABBA rounds until every engine has ``iterations`` samples and ``min_seconds`` of timed work."""
    names = list(runners)
    times: dict[str, list[float]] = {n: [] for n in names}
    total = dict.fromkeys(names, 0.0)
    i = 0
    while i < cfg.max_iterations and (i < cfg.iterations or min(total.values()) < cfg.min_seconds):
        order = names if i % 2 == 0 else names[::-1]  # ABBA: neither engine always runs first
        for n in order:
            t = runners[n].time_once(feeds[n]).seconds
            times[n].append(t)
            total[n] += t
        i += 1
    return {n: ({**summarize(times[n], batch), "times_ms": [t * 1e3 for t in times[n]]}, times[n]) for n in names}


def _one_round(runner: Runner, feed: Mapping[str, Any], streams: int, seconds: float) -> tuple[float, list[float]]:
    """``streams`` threads call ``runner.infer`` back to back for ``seconds``; (wall seconds, request times)."""
    latencies: list[list[float]] = [[] for _ in range(streams)]
    barrier = threading.Barrier(streams + 1)
    errors: list[BaseException] = []

    def work(k: int, deadline_box: list[float]) -> None:
        barrier.wait()
        try:
            while time.perf_counter() < deadline_box[0]:
                t0 = time.perf_counter()
                runner.infer(feed)
                latencies[k].append(time.perf_counter() - t0)
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    box = [float("inf")]
    threads = [threading.Thread(target=work, args=(k, box), daemon=True) for k in range(streams)]
    for th in threads:
        th.start()
    box[0] = time.perf_counter() + seconds
    t_start = time.perf_counter()
    barrier.wait()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t_start
    if errors:
        raise BenchError(f"a throughput stream failed: {errors[0]}") from errors[0]
    return wall, [t for per in latencies for t in per]


def _time_throughput(runners: Mapping[str, Runner], feeds: Mapping[str, Any], batch: int, cfg: BenchConfig) -> _Timed:
    """Engines take turns (ABBA) over ``rounds`` rounds of ``streams`` concurrent request threads."""
    names = list(runners)
    per_round: dict[str, list[float]] = {n: [] for n in names}  # images/s in each round
    requests: dict[str, list[float]] = {n: [] for n in names}
    for r in range(cfg.rounds):
        for n in names if r % 2 == 0 else names[::-1]:
            wall, lat = _one_round(runners[n], feeds[n], cfg.streams, cfg.round_seconds)
            if not lat:
                raise BenchError(f"engine {n!r} finished no request in a {cfg.round_seconds} s round")
            per_round[n].append(len(lat) * batch / wall)
            requests[n].extend(lat)
    out: _Timed = {}
    for n in names:
        ips = per_round[n]
        summary = summarize(requests[n], batch)
        summary.update(
            streams=cfg.streams,
            rounds=cfg.rounds,
            throughput_ips=float(np.median(ips)),
            throughput_ips_per_round=ips,
        )
        out[n] = (summary, per_round[n])
    return out
