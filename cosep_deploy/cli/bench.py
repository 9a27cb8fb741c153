"""``cosep-deploy bench``: interleaved dense-vs-pruned timing on one backend, and alignment sweeps."""

from __future__ import annotations

import json

import click

from .main import Context
from .options import parse_batch_sizes, run_option, threads_option

__all__ = ["command"]


@click.command("bench")
@run_option
@click.option("--target", default="cpu-onnxruntime", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True)
@click.option("--batch-sizes", default="1,8", show_default=True, help="Comma-separated batch sizes.")
@click.option("--iterations", type=click.IntRange(5), default=50, show_default=True)
@click.option("--warmup", type=click.IntRange(0), default=10, show_default=True)
@click.option(
    "--sweep-alignment",
    default=None,
    metavar="R1,R2,...",
    help="Instead: prune at each channel alignment (e.g. 1,8,16,32) at the run's MACs ratio, time each "
    "against dense, and recommend the fastest round_to for this machine.",
)
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the speed-ups as JSON.")
@click.pass_obj
def command(
    obj: Context,
    run_dir: str,
    target: str,
    precision: str,
    batch_sizes: str,
    iterations: int,
    warmup: int,
    sweep_alignment: str | None,
    threads: int | None,
    as_json: bool,
) -> None:
    """Benchmark the dense and pruned engines (writes RUN/bench/bench.json)."""
    from ..bench.harness import BenchConfig
    from ..pipeline.deploy import alignment_stage, bench_stage

    cfg = BenchConfig(batch_sizes=parse_batch_sizes(batch_sizes), iterations=iterations, warmup=warmup)
    progress = None if as_json else obj.progress()
    if sweep_alignment:
        result = alignment_stage(run_dir, parse_batch_sizes(sweep_alignment), cfg, threads=threads, progress=progress)
        if as_json:
            click.echo(json.dumps(result, indent=2))
            return
        for r in result["results"]:
            per_batch = ", ".join(f"b={b}: {s['speedup']:.2f}x" for b, s in r["speedup"].items())
            obj.echo(f"round_to={r['round_to']}: MACs {r['macs_ratio']:.2f}x fewer; speed-up {per_batch}")
        obj.echo(f"recommended round_to for this machine: {result['recommended']} ({run_dir}/bench/alignment.json)")
        return
    report = bench_stage(run_dir, cfg, target=target, precision=precision, threads=threads, progress=progress)
    if as_json:
        click.echo(json.dumps(report.speedups, indent=2))
        return
    for b, s in report.speedups["pruned"].items():
        d = report.engines["dense"]["results"][b]["median_ms"]
        p = report.engines["pruned"]["results"][b]["median_ms"]
        obj.echo(
            f"batch {b}: dense {d:.3f} ms, pruned {p:.3f} ms, speed-up {s['speedup']:.2f}x "
            f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}], latency efficiency {s.get('latency_efficiency', 0):.2f}"
        )
