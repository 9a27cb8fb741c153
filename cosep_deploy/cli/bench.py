"""``cosep-deploy bench``: interleaved dense-vs-pruned timing on one backend, and alignment sweeps."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.options import (
    BENCH,
    bench_config_from,
    bench_options,
    json_option,
    optional_run_option,
    parse_batch_sizes,
    precision_option,
    threads_option,
)

__all__ = ["command"]


@click.command("bench")
@optional_run_option("Run directory whose engines to time (or give --files instead).")
@click.option(
    "--files",
    nargs=2,
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    metavar="BASELINE CANDIDATE",
    help="Instead of a run: two engine files (.onnx, or TensorRT .engine/.plan on a GPU) timed against each "
    "other, like trtexec; nothing is written.",
)
@click.option("--target", default="cpu-onnxruntime", show_default=True)
@precision_option(
    "fp32",
    "The engines' precision to time; with --files, the precision TensorRT engines without a manifest were "
    "built at (trtexec's carry none).",
)
@bench_options
@click.option(
    "--warmup-seconds",
    type=click.FloatRange(0),
    default=BENCH["warmup_seconds"],
    show_default=True,
    help="Least warm-up seconds per engine and batch size, besides --warmup calls (like trtexec --warmUp).",
)
@click.option(
    "--sweep-alignment",
    default=None,
    metavar="R1,R2,...",
    help="Instead: prune at each channel alignment (e.g. 1,8,16,32) at the run's MACs ratio, time each "
    "against dense, and recommend the fastest round_to for this machine.",
)
@threads_option
@click.option(
    "--trtexec",
    "use_trtexec",
    is_flag=True,
    help="Time the target's TensorRT engines with the trtexec binary (GPU compute times from --exportTimes).",
)
@click.option(
    "--device",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="GPU index for TensorRT engines (like trtexec --device).",
)
@json_option("Print the speed-ups beside their medians, p99s and images/s as JSON.")
@click.pass_obj
def command(
    obj: Context,
    run_dir: str | None,
    files: tuple[str, str] | None,
    target: str,
    precision: str,
    batch_sizes: str,
    iterations: int,
    min_seconds: float,
    warmup: int,
    mode: str,
    streams: int,
    warmup_seconds: float,
    sweep_alignment: str | None,
    threads: int | None,
    use_trtexec: bool,
    device: int,
    as_json: bool,
) -> None:
    """Benchmark the dense and pruned engines (writes RUN/bench/bench.json)."""
    from cosep_deploy.pipeline.deploy import alignment_stage, bench_stage

    cfg = dataclasses.replace(
        bench_config_from(batch_sizes, iterations, min_seconds, warmup, mode, streams), warmup_seconds=warmup_seconds
    )
    progress = None if as_json else obj.progress()
    if (run_dir is None) == (not files):
        raise click.UsageError("give either --run RUN or --files BASELINE CANDIDATE")
    if files:
        report = bench_files(files, cfg, threads=threads, device=device, precision=precision, progress=progress)
        _print_report(report, obj, as_json)
        return
    assert run_dir is not None
    if sweep_alignment:
        result = alignment_stage(run_dir, parse_batch_sizes(sweep_alignment), cfg, threads=threads, progress=progress)
        _print_sweep(result, run_dir, obj, as_json)
        return
    report = bench_stage(
        run_dir,
        cfg,
        target=target,
        precision=precision,
        threads=threads,
        progress=progress,
        trtexec=use_trtexec,
        device=device,
    )
    _print_report(report, obj, as_json)
    if not as_json:
        obj.echo(f"written to {run_dir}/bench/bench.json")


def _print_report(report: Any, obj: Context, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(bench_json_summary(report), indent=2))
    else:
        print_bench_table(report, obj)


def _print_sweep(result: dict[str, Any], run_dir: str, obj: Context, as_json: bool) -> None:
    """The alignment sweep: each round_to's MACs ratio and speed-ups, the skipped ones, the recommendation."""
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for r in result["results"]:
        per_batch = ", ".join(f"b={b}: {s['speedup']:.2f}x" for b, s in r["speedup"].items())
        obj.echo(f"round_to={r['round_to']}: MACs {r['macs_ratio']:.2f}x fewer; speed-up {per_batch}")
    for skipped in result.get("skipped", []):
        obj.echo(f"round_to={skipped['round_to']}: skipped ({skipped['skipped']})")
    obj.echo(f"recommended round_to for this machine: {result['recommended']} ({run_dir}/bench/alignment.json)")


def bench_files(
    files: tuple[str, str],
    cfg: Any,
    *,
    threads: int | None,
    device: int = 0,
    precision: str | None = None,
    progress: Any,
) -> Any:
    """Two engine files outside any run directory, timed interleaved: the first is the baseline."""
    import contextlib

    from cosep_deploy.backends.select import runner_for
    from cosep_deploy.bench.harness import bench_runners
    from cosep_deploy.errors import ConfigError

    names = ("baseline", "candidate")
    runners = {
        n: runner_for(path, threads=threads, device=device, precision=precision)
        for n, path in zip(names, files, strict=True)
    }
    with contextlib.ExitStack() as stack:
        for runner in runners.values():
            stack.enter_context(runner)
        shapes = {n: list(next(iter(r.info().input_shapes.values()), ()))[1:] for n, r in runners.items()}
        fixed = bool(shapes["baseline"]) and all(isinstance(d, int) for d in shapes["baseline"])
        if shapes["baseline"] != shapes["candidate"] or not fixed:
            raise ConfigError(
                f"input shapes differ or are not fixed: {files[0]} takes {shapes['baseline']} and {files[1]} "
                f"takes {shapes['candidate']} (after the batch dim); time models with one fixed input shape"
            )
        return bench_runners(runners, shapes["baseline"], cfg, baseline="baseline", progress=progress)


def bench_json_summary(report: Any) -> dict[str, Any]:
    """``--json``: per engine and batch size, the speed-up beside the figures it came from (both medians,
    p99s and images/s)."""
    out: dict[str, Any] = {}
    base = report.engines[report.baseline]["results"]
    for name, per_batch in report.speedups.items():
        mine = report.engines[name]["results"]
        out[name] = {
            b: {
                **s,
                "baseline": report.baseline,
                "baseline_median_ms": base[b]["median_ms"],
                "median_ms": mine[b]["median_ms"],
                "baseline_p99_ms": base[b].get("p99_ms"),
                "p99_ms": mine[b].get("p99_ms"),
                "baseline_images_per_s": base[b].get("throughput_ips"),
                "images_per_s": mine[b].get("throughput_ips"),
            }
            for b, s in per_batch.items()
        }
    return out


def print_bench_table(report: Any, obj: Context) -> None:
    """Dense vs pruned per batch size (median latency, or images/s in throughput mode), the speed-up with its
    confidence interval and MACs efficiency; then each engine's memory where the backend measured it."""
    from rich import box
    from rich.table import Table

    throughput = report.mode == "throughput"
    unit = "img/s" if throughput else "median ms"
    table = Table(
        title=f"{report.settings['backend']} {report.settings['precision']} ({report.mode} mode, {unit})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    base = report.baseline
    other = next(iter(report.speedups)) if len(report.speedups) == 1 else "engine"
    for col in ("batch", base, other, "speed-up", "95% CI", "MACs ratio", "efficiency"):
        table.add_column(col, justify="right", no_wrap=True)
    for name, per_batch in report.speedups.items():
        for b, s in per_batch.items():
            d, p = report.engines[base]["results"][b], report.engines[name]["results"][b]
            fmt = (lambda r: f"{r['throughput_ips']:.1f}") if throughput else (lambda r: f"{r['median_ms']:.3f}")
            table.add_row(
                b,
                fmt(d),
                fmt(p),
                f"{s['speedup']:.2f}x",
                f"{s['ci_low']:.2f}-{s['ci_high']:.2f}",
                f"{s['macs_ratio']:.2f}x" if "macs_ratio" in s else "-",
                f"{s['latency_efficiency']:.2f}" if "latency_efficiency" in s else "-",
            )
    obj.print(table)
    memory = {name: engine.get("memory") for name, engine in report.engines.items() if engine.get("memory")}
    if memory:
        obj.print(_memory_table(memory))


# keys a Runner.memory() may report (the first present is shown), column title. The RSS growth while a session
# loads stays in bench.json only: a later session reuses memory freed before it, so the figure (0.02 MB) says
# nothing about the model.
_MEMORY_COLUMNS = (
    (("model_file_bytes", "engine_file_bytes"), "file MB"),
    (("process_peak_rss_bytes",), "process peak RSS MB"),
    (("context_device_memory_bytes",), "device MB"),
)


def _memory_table(memory: dict[str, dict[str, Any]]) -> Any:
    """Memory per engine, in the columns some engine reported. RSS figures are the whole process's (the
    first session loaded also pays for runtime arenas; a later one may reuse memory freed before it)."""
    from rich import box
    from rich.table import Table

    def value(m: dict[str, Any], keys: tuple[str, ...]) -> Any:
        return next((m[k] for k in keys if m.get(k) is not None), None)

    columns = [(keys, t) for keys, t in _MEMORY_COLUMNS if any(value(m, keys) is not None for m in memory.values())]
    table = Table(title="memory", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("engine")
    for _, title in columns:
        table.add_column(title, justify="right", no_wrap=True)
    for name, m in memory.items():
        cells = [value(m, keys) for keys, _ in columns]
        table.add_row(name, *(f"{v / 1e6:.2f}" if v is not None else "-" for v in cells))
    return table
