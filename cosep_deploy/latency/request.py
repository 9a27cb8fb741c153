"""What a latency-targeted prune is asked for, and the checks that refuse a bad request before any work."""

from __future__ import annotations

import dataclasses
from typing import Any

from cosep_deploy.errors import ConfigError

__all__ = ["LatencyRequest", "tensorrt_table_hint"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LatencyRequest:
    """A requested speed-up (dense / pruned time) or a latency budget in ms, on a target at a batch size.

    ``min_keep_ratio``: every group keeps at least this fraction of its channels (rounded up to the
    alignment). ``rounds``: closed-loop rounds (measure, correct the prediction, re-allocate), 1 to 3;
    a round within ``tolerance`` of the request ends the loop. ``table``: a latency table file to use
    (e.g. one made on a board); else one is measured here, or read from the cache in ``cache_dir``.
    """

    target: str = "cpu-onnxruntime"
    precision: str | None = None
    batch: int = 1
    speedup: float | None = None
    budget_ms: float | None = None
    rounds: int = 3
    tolerance: float = 0.03
    min_keep_ratio: float = 0.1
    threads: int = 2
    points: int = 5
    table: str | None = None
    cache_dir: str | None = None
    rebuild_table: bool = False
    bench_iterations: int = 30
    bench_min_seconds: float = 3.0

    def __post_init__(self) -> None:
        if (self.speedup is None) == (self.budget_ms is None):
            raise ConfigError(
                "give exactly one of a target speed-up (--target-speedup) or a latency budget (--latency-budget-ms)"
            )
        if self.speedup is not None and not self.speedup > 1:
            raise ConfigError(f"a target speed-up must be above 1 (dense time / pruned time), got {self.speedup}")
        if self.budget_ms is not None and not self.budget_ms > 0:
            raise ConfigError(f"a latency budget must be a positive number of ms, got {self.budget_ms}")
        if self.batch < 1 or self.threads < 1:
            raise ConfigError(f"latency batch and threads must be >= 1, got {self.batch} and {self.threads}")
        if not 1 <= self.rounds <= 3:
            raise ConfigError(f"closed-loop rounds must be 1 to 3, got {self.rounds}")
        if not 0 < self.min_keep_ratio <= 1:
            raise ConfigError(f"minimum keep ratio must be in (0, 1], got {self.min_keep_ratio}")
        if self.points < 2:
            raise ConfigError(f"a latency table needs at least 2 grid points per axis, got {self.points}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def tensorrt_table_hint(target: str) -> str:
    """How to get a TensorRT target's table: it is measured on the board, not here."""
    return (
        f"make the latency table on the board: build the deploy bundle for --target {target}, run its table "
        "sweep on the board (trtexec --exportProfile per layer shape), bring the result back with "
        "`cosep-deploy collect`, then pass the table file with --latency-table FILE"
    )
