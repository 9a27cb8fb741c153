"""Click options shared by several commands, so flags mean the same thing everywhere, with their defaults read
from the stages' config dataclasses (one source for each default: ``BENCH``, ``PRUNE``, ``TRAIN`` below)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click

from cosep_deploy.bench.config import BenchConfig
from cosep_deploy.finetune.config import DENSE_TRAINING, TrainConfig
from cosep_deploy.prune.config import PruneConfig

__all__ = [
    "BENCH",
    "PRECISIONS",
    "PRUNE",
    "SEED",
    "bench_config_from",
    "bench_options",
    "config_defaults",
    "json_option",
    "optional_run_option",
    "parse_batch_sizes",
    "precision_option",
    "prune_options",
    "run_option",
    "threads_option",
    "train_config_from",
    "train_options",
]

F = TypeVar("F", bound=Callable[..., Any])
PRECISIONS = ("fp32", "fp16", "int8")


def config_defaults(cls: type) -> dict[str, Any]:
    """A config dataclass's field defaults, read without making one (PruneConfig's validation imports torch)."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


BENCH = config_defaults(BenchConfig)
PRUNE = config_defaults(PruneConfig)
SEED = DENSE_TRAINING.seed  # one seed drives a whole run (training, pruning, fine-tuning, benchmarks)


def run_option(f: F) -> F:
    # --run-dir: under torchrun, `--run` is taken for an abbreviation of torchrun's own --run-path
    return click.option(
        "--run",
        "--run-dir",
        "run_dir",
        required=True,
        type=click.Path(file_okay=False),
        help="Run directory holding every stage's artifacts (spell it --run-dir under torchrun).",
    )(f)


def optional_run_option(help: str) -> Callable[[F], F]:
    """``--run``/``--run-dir`` of the commands that also take standalone files instead of a run."""
    return click.option("--run", "--run-dir", "run_dir", default=None, type=click.Path(file_okay=False), help=help)


def precision_option(default: str | None, help: str | None = None) -> Callable[[F], F]:
    """``--precision fp32|fp16|int8`` (``default=None``: the command resolves it)."""
    return click.option(
        "--precision", type=click.Choice(PRECISIONS), default=default, show_default=default is not None, help=help
    )


def json_option(help: str) -> Callable[[F], F]:
    """``--json``: the result as JSON on stdout (log lines and errors stay on stderr)."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def threads_option(f: F) -> F:
    return click.option(
        "--threads",
        type=click.IntRange(1),
        default=None,
        help="ONNX Runtime intra-op threads (default: min(cores, 2)).",
    )(f)


def train_options(defaults: TrainConfig) -> Callable[[F], F]:
    """--epochs, --lr, --batch-size, --seed with the stage's defaults (finetune.config: one source)."""

    def deco(f: F) -> F:
        f = click.option("--epochs", type=click.IntRange(0), default=defaults.epochs, show_default=True)(f)
        lr = click.FloatRange(min=0, min_open=True)
        f = click.option("--lr", type=lr, default=defaults.lr, show_default=True)(f)
        f = click.option("--batch-size", type=click.IntRange(1), default=defaults.batch_size, show_default=True)(f)
        return click.option("--seed", type=int, default=defaults.seed, show_default=True)(f)

    return deco


def train_config_from(epochs: int, lr: float, batch_size: int, seed: int, **extra: Any) -> Any:
    return TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, **extra)


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 1,8,40, got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise click.BadParameter(f"batch sizes must be positive integers, got {text!r}")
    return sizes


def bench_options(f: F) -> F:
    """Benchmark settings: batch sweep, sample count and duration, warm-up, latency or throughput mode."""
    batch_sizes = ",".join(str(b) for b in BENCH["batch_sizes"])
    f = click.option("--batch-sizes", default=batch_sizes, show_default=True, help="Comma-separated batch sizes.")(f)
    f = click.option(
        "--iterations",
        type=click.IntRange(5),
        default=BENCH["iterations"],
        show_default=True,
        help="Least number of timed iterations per engine and batch size.",
    )(f)
    f = click.option(
        "--min-seconds",
        type=click.FloatRange(0),
        default=BENCH["min_seconds"],
        show_default=True,
        help="Least timed seconds per engine and batch size (like trtexec --duration).",
    )(f)
    f = click.option("--warmup", type=click.IntRange(0), default=BENCH["warmup"], show_default=True)(f)
    f = click.option(
        "--mode",
        type=click.Choice(["latency", "throughput"]),
        default=BENCH["mode"],
        show_default=True,
        help="latency: one request at a time; throughput: --streams concurrent requests.",
    )(f)
    return click.option(
        "--streams",
        type=click.IntRange(1),
        default=BENCH["streams"],
        show_default=True,
        help="Concurrent request streams in throughput mode.",
    )(f)


def bench_config_from(
    batch_sizes: str, iterations: int, min_seconds: float, warmup: int, mode: str, streams: int, seed: int = SEED
) -> BenchConfig:
    return BenchConfig(
        batch_sizes=parse_batch_sizes(batch_sizes),
        iterations=iterations,
        min_seconds=min_seconds,
        warmup=warmup,
        mode=mode,
        streams=streams,
        seed=seed,
        round_seconds=max(min_seconds / 6, 0.1),  # throughput mode: min_seconds spread over its 6 rounds
    )


def prune_options(f: F) -> F:
    """The selection options ``prune`` and ``pipeline`` share, so they mean the same in both."""
    f = click.option(
        "--method",
        type=click.Choice(["cosep", "l1", "random", "uniform", "emp", "random_clusters"]),
        default=PRUNE["method"],
        show_default=True,
        help="CoSeP, or a baseline for comparisons (random_clusters: random clusters, largest-L1 member); "
        "l1, random, uniform and random_clusters need a count (--ratio, --target-macs-ratio or --counts-from).",
    )(f)
    f = click.option(
        "--schedule",
        type=click.Choice(["oneshot", "sequential"]),
        default=PRUNE["schedule"],
        show_default=True,
        help="sequential = the paper: layer by layer, statistics recomputed on the pruned network, a short "
        "fine-tune after each layer.",
    )(f)
    f = click.option(
        "--between-epochs",
        type=click.IntRange(0),
        default=PRUNE["between_epochs"],
        help="Fine-tune epochs after each pruned layer (sequential schedule; default: the paper's 2 there, else 0).",
    )(f)
    f = click.option(
        "--bn-recalibrate",
        type=click.IntRange(0),
        default=PRUNE["bn_recalibrate"],
        show_default=True,
        help="Re-estimate BatchNorm statistics on this many batches after surgery (0: off).",
    )(f)
    f = click.option(
        "--target-macs-ratio",
        type=click.FloatRange(1, min_open=True),
        default=PRUNE["target_macs_ratio"],
        help="Global budget: scale every group's count until dense MACs / pruned MACs reaches this.",
    )(f)
    ipc = PRUNE["images_per_class"]
    return click.option("--images-per-class", type=click.IntRange(2), default=ipc, show_default=True)(f)
