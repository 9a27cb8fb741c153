"""The benchmark's settings (:class:`BenchConfig`), in a module with no heavy import: the CLI reads its defaults
for ``--help`` (one source for each default), and :mod:`.harness` times with them."""

from __future__ import annotations

import dataclasses

from cosep_deploy.errors import ConfigError

__all__ = ["BenchConfig"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchConfig:
    batch_sizes: tuple[int, ...] = (1, 8, 40)
    warmup: int = 10  # the least number of warm-up calls per engine and batch size
    warmup_seconds: float = 0.2  # ... and the least warm-up seconds (trtexec's default --warmUp)
    iterations: int = 50  # the least number of timed iterations per engine and batch size
    min_seconds: float = 1.0  # ... and the least timed seconds per engine and batch size
    max_iterations: int = 100_000
    mode: str = "latency"  # or "throughput"
    streams: int = 2  # throughput mode: concurrent request threads per engine
    rounds: int = 6  # throughput mode: turns per engine
    round_seconds: float = 1.0  # throughput mode: length of one turn
    seed: int = 0
    bootstrap_resamples: int = 2000

    def __post_init__(self) -> None:
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise ConfigError(f"batch sizes must be positive integers, got {self.batch_sizes}")
        if self.iterations < 5:
            raise ConfigError(f"at least 5 timed iterations are needed, got {self.iterations}")
        if self.warmup < 0 or self.warmup_seconds < 0:
            raise ConfigError(f"warm-up must be >= 0 calls and >= 0 s, got {self.warmup} and {self.warmup_seconds} s")
        if self.min_seconds < 0 or self.round_seconds <= 0:
            raise ConfigError(f"durations must be positive, got {self.min_seconds} s and {self.round_seconds} s")
        if self.max_iterations < self.iterations:
            raise ConfigError(f"max_iterations {self.max_iterations} is below iterations {self.iterations}")
        if self.mode not in ("latency", "throughput"):
            raise ConfigError(f"unknown benchmark mode {self.mode!r}: use 'latency' or 'throughput'")
        if self.streams < 1 or self.rounds < 2:
            raise ConfigError(f"throughput mode needs >= 1 stream and >= 2 rounds, got {self.streams}, {self.rounds}")
