"""Every pruning parameter (:class:`PruneConfig`), in a module with no heavy import: the CLI reads its defaults
for ``--help`` (one source for each default); validation imports the method registry when a config is made."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from cosep_deploy.errors import ConfigError, unknown_name

__all__ = ["KNEE_RULES", "SCHEDULES", "PruneConfig"]

SCHEDULES = ("oneshot", "sequential")
KNEE_RULES = ("robust", "paper")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PruneConfig:
    """Every pruning parameter; all of it is recorded in the plan.

    ``method``: a registered selection method (``cosep``, ``l1``, ``random``, ``uniform``, ``emp``,
    ``random_clusters``). ``ratio`` (keep fraction) or ``counts`` (kept channels per group root, e.g.
    CoSeP's, for a matched comparison) set the counts of the methods without a count of their own;
    ``target_macs_ratio`` (dense MACs / pruned MACs) scales every group's count by one global factor.
    ``knee_rule``: ``robust`` (default) or ``paper`` (the literal Kneedle + degree-2 fit); ``min_keep`` /
    ``max_keep`` bound the robust knee's keep ratio. ``round_to``: channel alignment (nearest multiple,
    never more than a quarter of k away). ``bn_recalibrate``: re-estimate BatchNorm statistics on that many
    batches of the pruning loader after surgery (0 = off).
    """

    method: str = "cosep"
    schedule: str = "oneshot"
    hook_point: str = "bn"
    spatial: str = "gap"
    images_per_class: int = 32
    pair_budget: int | None = None
    k_grid: str = "auto"
    keep: str = "max_l1"
    knee_rule: str = "robust"
    min_keep: float = 0.125
    max_keep: float = 0.875
    round_to: int = 1
    seed: int = 0
    ignored_layers: tuple[str, ...] = ()
    prune_stem: bool = False  # the paper leaves the stem (first conv) and the classifier alone
    ratio: float | None = None
    counts: Mapping[str, int] | None = None
    emp_beta: float = 1.0
    target_macs_ratio: float | None = None
    allocator: str | None = None  # None: "counts" with counts, "macs" with a target MACs ratio, else "own"
    bn_recalibrate: int = 0
    # the paper's fine-tune between layers (sequential schedule; the pipeline's prune stage runs it):
    # None = the paper's 2 epochs with schedule "sequential", 0 otherwise
    between_epochs: int | None = None
    between_fraction: float = 0.25
    between_lr: float = 0.01

    @property
    def between_epochs_resolved(self) -> int:
        if self.between_epochs is not None:
            return self.between_epochs
        return 2 if self.schedule == "sequential" else 0

    def __post_init__(self) -> None:
        from cosep_deploy.prune.methods import get_method  # the registry imports torch: not at --help time
        from cosep_deploy.separability.taps import HOOK_POINTS

        choices = {  # the method is checked against the registry (get_method), which users can extend
            "schedule": SCHEDULES,
            "hook_point": HOOK_POINTS,
            "k_grid": ("auto", "all"),
            "keep": ("max_l1", "medoid"),
            "knee_rule": KNEE_RULES,
        }
        for field, valid in choices.items():
            if getattr(self, field) not in valid:
                raise ConfigError(unknown_name(field.replace("_", " "), getattr(self, field), valid))
        if self.round_to < 1:
            raise ConfigError(f"round_to must be >= 1, got {self.round_to}")
        if self.images_per_class < 2:
            raise ConfigError(f"images_per_class must be >= 2, got {self.images_per_class}")
        if self.ratio is not None and not 0 < self.ratio <= 1:
            raise ConfigError(f"keep ratio must be in (0, 1], got {self.ratio}")
        if not 0 < self.min_keep <= self.max_keep <= 1:
            raise ConfigError(
                f"keep-ratio bounds need 0 < min_keep <= max_keep <= 1, got {self.min_keep}, {self.max_keep}"
            )
        if self.target_macs_ratio is not None and self.target_macs_ratio <= 1:
            raise ConfigError(f"target MACs ratio (dense / pruned) must be > 1, got {self.target_macs_ratio}")
        if self.bn_recalibrate < 0:
            raise ConfigError(f"bn_recalibrate (batches) must be >= 0, got {self.bn_recalibrate}")
        get_method(self.method).check_config(self)
        if self.between_epochs_resolved > 0 and self.schedule != "sequential":
            raise ConfigError("a fine-tune between layers needs schedule 'sequential'")
        if not 0 < self.between_fraction <= 1 or not self.between_lr > 0:
            raise ConfigError("between-layer fine-tune: fraction must be in (0, 1] and lr > 0")
        if self.schedule == "sequential" and self.target_macs_ratio is not None:
            raise ConfigError("a global MACs budget needs schedule 'oneshot' (all counts are scaled together)")

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ignored_layers"] = list(self.ignored_layers)
        d["counts"] = dict(self.counts) if self.counts is not None else None
        d["between_epochs"] = self.between_epochs_resolved
        return d
