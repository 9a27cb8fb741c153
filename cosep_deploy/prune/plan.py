"""The pruning plan: every decision of a pruning run, replayable on the base model.

A pruned model is never pickled: it is the base model spec + this plan + safetensors weights. Loading
rebuilds the base model, replays the name-keyed channel removals and loads the weights strictly.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cosep_deploy.artifacts import JsonArtifact, read_json, sha256_file, staged_dir
from cosep_deploy.errors import CosepError, PlanMismatchError
from cosep_deploy.prune.coupling import CouplingGraph

__all__ = ["PLAN_FILE", "WEIGHTS_FILE", "PruningPlan", "load_pruned", "save_pruned"]

PLAN_FILE = "plan.json"
WEIGHTS_FILE = "weights.safetensors"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PruningPlan(JsonArtifact):
    """What was pruned, how, and why (per group), plus the replayable removal history."""

    _schema = "PruningPlan"
    _schema_version = 1

    base_model: dict[str, Any]  # ModelSpec.to_json() of the dense model
    input_shape: list[int]
    method: str
    config: dict[str, Any]  # every parameter: hook point, spatial mode, pair budget, k grid, rounding...
    groups: list[dict[str, Any]]  # per group: root, members, size, kept, k, fallback, grid, curve, note
    history: list[list[Any]]  # [layer name, is_out_channels, removed root indices], in order
    cost_before: dict[str, Any]
    cost_after: dict[str, Any]
    data: dict[str, Any]  # statistics data: spec, images per class, sha of the dense weights
    seconds: float
    provenance: dict[str, Any]

    @property
    def macs_ratio(self) -> float:
        return float(self.cost_before["macs"]) / max(float(self.cost_after["macs"]), 1.0)


def save_pruned(
    plan: PruningPlan,
    model: nn.Module,
    directory: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``plan.json`` and ``weights.safetensors`` (and any ``extra`` JSON files, by file name) into
    ``directory`` atomically: the directory is staged and renamed into place."""
    from safetensors.torch import save_file

    from cosep_deploy.artifacts import write_json

    with staged_dir(directory, overwrite=overwrite) as tmp:
        for name, body in (extra or {}).items():
            write_json(tmp / name, body)
        state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILE))
        body = plan.to_json()
        body["weights_sha256"] = sha256_file(tmp / WEIGHTS_FILE)
        write_json(tmp / PLAN_FILE, body)
    return Path(directory)


def load_pruned(directory: str | os.PathLike[str]) -> tuple[nn.Module, PruningPlan]:
    """Rebuild the base model, replay the plan, load the weights (no unpickling). Refuses mismatches."""
    from safetensors.torch import load_file

    from cosep_deploy.models import ModelSpec, build_model

    d = Path(directory)
    raw = read_json(d / PLAN_FILE, what="pruning plan")
    if not isinstance(raw, dict):
        raise CosepError(f"{d / PLAN_FILE} does not hold a pruning plan")
    plan = PruningPlan.from_json(raw)
    weights = d / WEIGHTS_FILE
    if not weights.is_file():
        raise CosepError(f"pruned weights not found: {weights}")
    expected = raw.get("weights_sha256")
    if expected and sha256_file(weights) != expected:
        raise CosepError(f"{weights} does not match its plan (sha256 differs): the files were mixed or damaged")
    model = build_model(ModelSpec.from_json(plan.base_model))
    apply_plan(model, plan)
    state = load_file(str(weights))
    _load_strict(model, state, weights)
    return model.eval(), plan


def apply_plan(model: nn.Module, plan: PruningPlan) -> nn.Module:
    """Replay ``plan``'s channel removals on a freshly built base ``model`` (in place)."""
    example = torch.zeros((1, *plan.input_shape))
    graph = CouplingGraph(model, example)
    graph.replay(plan.history)
    return model


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:3]}")
        if shapes:
            parts.append(f"shape mismatch {[(k, tuple(own[k].shape), tuple(state[k].shape)) for k in shapes[:3]]}")
        raise PlanMismatchError(f"weights {source} do not fit the model rebuilt from the plan: " + "; ".join(parts))
    # safetensors keeps tensors only; modules that check their state-dict version (torchvision's MNASNet)
    # need the per-module metadata a state_dict() carries: take it from the freshly built model
    with_meta: Any = collections.OrderedDict(state)
    with_meta._metadata = getattr(own, "_metadata", None)
    model.load_state_dict(with_meta, strict=True)
