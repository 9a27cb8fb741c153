"""Structural pruning: coupling (Torch-Pruning adapter), CoSeP scoring, policy, plans, MACs.

The config (:mod:`.config`) imports no torch, so the CLI can read its defaults at start-up; the rest is imported
on first use of its names.
"""

from typing import Any

from cosep_deploy.prune.config import PruneConfig

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

_LAZY = {
    "prune": "cosep_deploy.prune.api",
    "ModelCost": "cosep_deploy.prune.macs",
    "count_macs_params": "cosep_deploy.prune.macs",
    "PruningPlan": "cosep_deploy.prune.plan",
    "apply_plan": "cosep_deploy.prune.plan",
    "load_pruned": "cosep_deploy.prune.plan",
    "save_pruned": "cosep_deploy.prune.plan",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
