"""Structural pruning: coupling (Torch-Pruning adapter), CoSeP scoring, policy, plans, MACs."""

from cosep_deploy.prune.api import PruneConfig, prune
from cosep_deploy.prune.macs import ModelCost, count_macs_params
from cosep_deploy.prune.plan import PruningPlan, apply_plan, load_pruned, save_pruned

__all__ = [
    "ModelCost",
    "PruneConfig",
    "PruningPlan",
    "apply_plan",
    "count_macs_params",
    "load_pruned",
    "prune",
    "save_pruned",
]
