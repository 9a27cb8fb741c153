"""``cosep-deploy bench``: interleaved dense-vs-pruned timing on one backend, and alignment sweeps."""

from __future__ import annotations

import json
from typing import Any

import click

from .main import Context
from .options import bench_config_from, bench_options, parse_batch_sizes, run_option, threads_option

__all__ = ["command"]


@click.command("bench")
@run_option
@click.option("--target", default="cpu-onnxruntime", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True)
@bench_options
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
    min_seconds: float,
    warmup: int,
    mode: str,
    streams: int,
    sweep_alignment: str | None,
    threads: int | None,
    as_json: bool,
) -> None:
    """Benchmark the dense and pruned engines (writes RUN/bench/bench.json)."""
    from ..pipeline.deploy import alignment_stage, bench_stage

    cfg = bench_config_from(batch_sizes, iterations, min_seconds, warmup, mode, streams)
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
    print_bench_table(report, obj)
    obj.echo(f"written to {run_dir}/bench/bench.json")


def print_bench_table(report: Any, obj: Context) -> None:
    """Dense vs pruned per batch size: median latency (or images/s), speed-up with its CI, efficiency, memory."""
    from rich.table import Table

    throughput = report.mode == "throughput"
    table = Table(title=f"{report.settings['backend']} {report.settings['precision']} ({report.mode} mode)")
    for col in ("batch", "dense", "pruned", "speed-up", "95% CI", "MACs ratio", "efficiency"):
        table.add_column(col, justify="right")
    for b, s in report.speedups["pruned"].items():
        d, p = report.engines["dense"]["results"][b], report.engines["pruned"]["results"][b]
        fmt = (lambda r: f"{r['throughput_ips']:.1f} img/s") if throughput else (lambda r: f"{r['median_ms']:.3f} ms")
        table.add_row(
            b, fmt(d), fmt(p), f"{s['speedup']:.2f}x", f"{s['ci_low']:.2f}-{s['ci_high']:.2f}",
            f"{s['macs_ratio']:.2f}x" if "macs_ratio" in s else "-",
            f"{s['latency_efficiency']:.2f}" if "latency_efficiency" in s else "-",
        )  # fmt: skip
    obj.print(table)
    for name, engine in report.engines.items():
        mem = engine.get("memory") or {}
        if mem.get("session_load_rss_bytes") is not None:
            obj.echo(
                f"{name}: model file {mem['model_file_bytes'] / 1e6:.2f} MB, session load "
                f"+{mem['session_load_rss_bytes'] / 1e6:.1f} MB resident"
            )
