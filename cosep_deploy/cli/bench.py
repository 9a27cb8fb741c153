"""``cosep-deploy bench``: interleaved dense-vs-pruned timing on one backend."""

from __future__ import annotations

import json

import click

from .main import Context
from .options import parse_batch_sizes, run_option, threads_option

__all__ = ["command"]


@click.command("bench")
@run_option
@click.option("--target", default="cpu-onnxruntime", show_default=True)
@click.option("--batch-sizes", default="1,8", show_default=True, help="Comma-separated batch sizes.")
@click.option("--iterations", type=click.IntRange(5), default=50, show_default=True)
@click.option("--warmup", type=click.IntRange(0), default=10, show_default=True)
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the speed-ups as JSON.")
@click.pass_obj
def command(
    obj: Context,
    run_dir: str,
    target: str,
    batch_sizes: str,
    iterations: int,
    warmup: int,
    threads: int | None,
    as_json: bool,
) -> None:
    """Benchmark the dense and pruned engines (writes RUN/bench/bench.json)."""
    from ..bench.harness import BenchConfig
    from ..pipeline.deploy import bench_stage

    cfg = BenchConfig(batch_sizes=parse_batch_sizes(batch_sizes), iterations=iterations, warmup=warmup)
    report = bench_stage(run_dir, cfg, target=target, threads=threads, progress=None if as_json else obj.progress())
    if as_json:
        click.echo(json.dumps(report.speedups, indent=2))
        return
    for b, s in report.speedups["pruned"].items():
        d = report.engines["dense"]["results"][b]["median_ms"]
        p = report.engines["pruned"]["results"][b]["median_ms"]
        obj.echo(
            f"batch {b}: dense {d:.3f} ms, pruned {p:.3f} ms, speed-up {s['speedup']:.2f}x "
            f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}]"
        )
