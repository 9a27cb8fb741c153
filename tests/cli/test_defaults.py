"""One source for each default (issue 13): every CLI option that sets a stage's config field defaults to that
field's default in the config dataclass, read here independently of the CLI's own lookup."""

from __future__ import annotations

import dataclasses
from typing import Any

import click
import pytest

from cosep_deploy.bench.config import BenchConfig
from cosep_deploy.cli.main import cli
from cosep_deploy.finetune.config import DENSE_TRAINING, FINETUNING
from cosep_deploy.prune.config import PruneConfig


def _field_defaults(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


BENCH, PRUNE = _field_defaults(BenchConfig), _field_defaults(PruneConfig)
BENCH_OPTIONS = {
    "batch_sizes": ",".join(map(str, BENCH["batch_sizes"])),
    **{k: BENCH[k] for k in ("iterations", "min_seconds", "warmup", "mode", "streams")},
}
SHARED_PRUNE = ("method", "schedule", "between_epochs", "bn_recalibrate", "target_macs_ratio", "images_per_class")
PRUNE_ONLY = (
    "hook_point",
    "knee_rule",
    "min_keep",
    "max_keep",
    "between_fraction",
    "between_lr",
    "spatial",
    "pair_budget",
    "k_grid",
    "keep",
    "ratio",
    "emp_beta",
    "seed",
)
TRAIN = ("epochs", "lr", "batch_size", "seed")

EXPECTED: dict[str, dict[str, Any]] = {
    "bench": {**BENCH_OPTIONS, "warmup_seconds": BENCH["warmup_seconds"]},
    "prune": {k: PRUNE[k] for k in (*SHARED_PRUNE, *PRUNE_ONLY)},
    "train": {k: getattr(DENSE_TRAINING, k) for k in TRAIN},
    "finetune": {**{k: getattr(FINETUNING, k) for k in TRAIN}, "distill": FINETUNING.distill_alpha},
    "pipeline": {
        **BENCH_OPTIONS,
        **{k: PRUNE[k] for k in SHARED_PRUNE},
        "epochs": DENSE_TRAINING.epochs,
        "finetune_epochs": FINETUNING.epochs,
        "distill": FINETUNING.distill_alpha,
        "seed": DENSE_TRAINING.seed,
    },
}


def _defaults(command: click.Command) -> dict[str, Any]:
    return {p.name: p.default for p in command.params if isinstance(p, click.Option) and p.name}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_defaults_are_the_config_defaults(name: str) -> None:
    defaults = _defaults(cli.commands[name])
    for option, value in EXPECTED[name].items():
        assert option in defaults, f"{name} has no --{option.replace('_', '-')}"
        assert defaults[option] == value, (name, option, defaults[option], value)


def test_pipeline_defaults_match_pipeline_config() -> None:
    pytest.importorskip("torch")
    from cosep_deploy.pipeline import PipelineConfig

    cfg, defaults = PipelineConfig(), _defaults(cli.commands["pipeline"])
    assert (defaults["model"], defaults["data"], defaults["seed"]) == (cfg.run.model, cfg.run.data, cfg.run.seed)
    assert (defaults["target"], defaults["precision"]) == (cfg.target, cfg.bench_precision)
    assert (cfg.train, cfg.finetune, cfg.bench) == (DENSE_TRAINING, FINETUNING, BenchConfig())
    assert _field_defaults(type(cfg.prune)) == PRUNE


def test_seed_is_shared() -> None:
    """One seed drives a run: the stage configs agree, so the CLI's single --seed default is theirs."""
    assert DENSE_TRAINING.seed == FINETUNING.seed == PRUNE["seed"] == BENCH["seed"]
