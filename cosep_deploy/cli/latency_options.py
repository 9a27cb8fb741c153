"""Options of latency-targeted pruning, shared by ``prune`` and ``pipeline``: prune to a measured speed-up
(or a latency budget) on the target instead of a MACs count. Imports no torch (``--help`` stays light)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.errors import ConfigError

__all__ = ["echo_latency_result", "latency_options", "latency_request_from"]

F = TypeVar("F", bound=Callable[..., Any])


def latency_options(func: F) -> F:
    options = [
        click.option(
            "--target-speedup",
            type=float,
            default=None,
            help="Prune until the pruned model runs this many times faster than the dense one on --target "
            "(measured: latency table, then closed loop).",
        ),
        click.option(
            "--latency-budget-ms",
            type=float,
            default=None,
            help="Instead of a speed-up: the pruned model's time per batch on --target, in ms.",
        ),
        click.option("--latency-batch", type=int, default=None, help="Batch size the speed-up is for (default 1)."),
        click.option(
            "--latency-table",
            type=click.Path(dir_okay=False),
            default=None,
            help="Latency table file to use (e.g. one measured on the board); default: measure here, cached.",
        ),
        click.option("--latency-rounds", type=int, default=None, help="Closed-loop rounds, 1 to 3 (default 3)."),
        click.option("--rebuild-table", is_flag=True, help="Measure the latency table again, ignoring the cache."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def latency_request_from(
    target: str | None,
    precision: str | None,
    speedup: float | None,
    budget_ms: float | None,
    batch: int | None,
    table: str | None,
    rounds: int | None,
    rebuild: bool,
    *,
    macs_ratio: float | None = None,
    threads: int | None = None,
) -> Any:
    """A :class:`~cosep_deploy.latency.request.LatencyRequest`, or None when no latency option was given."""
    if speedup is None and budget_ms is None:
        extra = [
            n for n, v in (("--latency-batch", batch), ("--latency-table", table), ("--latency-rounds", rounds)) if v
        ]
        if extra or rebuild:
            raise ConfigError(f"{(extra or ['--rebuild-table'])[0]} needs --target-speedup or --latency-budget-ms")
        return None
    if macs_ratio is not None:
        raise ConfigError("give a speed-up (--target-speedup/--latency-budget-ms) or --target-macs-ratio, not both")
    from cosep_deploy.latency.request import LatencyRequest

    return LatencyRequest(
        target=target or "cpu-onnxruntime",
        precision=precision,
        batch=batch if batch is not None else 1,
        speedup=speedup,
        budget_ms=budget_ms,
        rounds=rounds if rounds is not None else 3,
        table=table,
        rebuild_table=rebuild,
        threads=threads or 2,
    )


def echo_latency_result(obj: Context, plan: Any, acc: float, run_dir: str) -> None:
    lat = plan.config["latency"]
    chosen = lat["rounds"][lat["chosen_round"] - 1]
    req = chosen["requested_speedup"]
    want = f"{req:.2f}x" if req is not None else f"{chosen['budget_ms']} ms"
    measured = chosen["measured_speedup"]
    got = f"measured {measured:.2f}x" if measured is not None else "not measured here (TensorRT target)"
    obj.echo(
        f"{plan.method} to latency: requested {want}, predicted {chosen['predicted_speedup']:.2f}x, {got} "
        f"(round {lat['chosen_round']} of {len(lat['rounds'])}); MACs {plan.macs_ratio:.2f}x fewer; "
        f"top-1 before fine-tuning {100 * acc:.2f}% -> {run_dir}/pruned"
    )
