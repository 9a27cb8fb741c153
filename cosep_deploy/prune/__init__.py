"""Structural pruning: coupling (Torch-Pruning adapter), CoSeP scoring, policy, plans, MACs."""

from .api import PruneConfig, prune
from .macs import ModelCost, count_macs_params
from .plan import PruningPlan, apply_plan, load_pruned, save_pruned

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
