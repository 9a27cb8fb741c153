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

from cosep_deploy.artifacts import JsonArtifact, atomic_write_bytes, read_json, sha256_file, staged_dir
from cosep_deploy.errors import ArtifactError, CosepError, ModelError, PlanMismatchError
from cosep_deploy.prune.coupling import CouplingGraph

__all__ = ["PLAN_FILE", "WEIGHTS_FILE", "PruningPlan", "load_pruned", "save_pruned", "validate_plan_json"]

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
    weights_sha256: str | None = None  # set by save_pruned

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
    from safetensors.torch import save

    from cosep_deploy.artifacts import write_json

    with staged_dir(directory, overwrite=overwrite) as tmp:
        for name, body in (extra or {}).items():
            write_json(tmp / name, body)
        state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        atomic_write_bytes(tmp / WEIGHTS_FILE, save(state))  # 0644 like every other artifact
        body = plan.to_json()
        body["weights_sha256"] = sha256_file(tmp / WEIGHTS_FILE)
        validate_plan_json(body, tmp / PLAN_FILE)
        write_json(tmp / PLAN_FILE, body)
    return Path(directory)


def load_pruned(
    directory: str | os.PathLike[str], *, model: nn.Module | None = None, trust_code: bool | None = None
) -> tuple[nn.Module, PruningPlan]:
    """Rebuild the base model, replay the plan, load the weights (no unpickling). Refuses mismatches.

    ``model``: a fresh, unpruned instance of the base model, for a plan made from your own model object
    (``prune(MyNet(), ...)``): ``load_pruned(path, model=MyNet())``. Without it the base model is built from
    the plan's spec; a ``package.module:factory`` name there is refused unless ``trust_code=True`` (or
    ``--trust-model-code``), since importing it runs code named by a file.
    """
    from safetensors.torch import load_file

    from cosep_deploy.models import ModelSpec, build_model
    from cosep_deploy.models.registry import check_spec_from_file

    d = Path(directory)
    plan = read_plan(d / PLAN_FILE)
    weights = d / WEIGHTS_FILE
    if not weights.is_file():
        raise ArtifactError(f"pruned weights not found: {weights}")
    expected = plan.weights_sha256
    if expected and sha256_file(weights) != expected:
        raise ArtifactError(f"{weights} does not match its plan (sha256 differs): the files were mixed or damaged")
    if model is None:
        if not plan.base_model.get("name"):
            raise ModelError(
                f"{d / PLAN_FILE} was made from a model object, not a named model: pass a fresh instance of it, "
                "load_pruned(path, model=MyNet())"
            )
        spec = ModelSpec.from_json(plan.base_model)
        check_spec_from_file(spec, d / PLAN_FILE, trust_code=trust_code)
        model = build_model(spec)
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


def read_plan(path: str | os.PathLike[str]) -> PruningPlan:
    """A plan file, validated against its schema and cross-checked (kept channels vs the history)."""
    raw = read_json(path, what="pruning plan")
    if not isinstance(raw, dict):
        raise ArtifactError(f"{path} does not hold a pruning plan (found {type(raw).__name__})")
    try:
        plan = PruningPlan.from_json(raw)
    except TypeError as exc:  # a missing field
        raise ArtifactError(f"{path} is not a complete pruning plan ({exc}); re-run `cosep-deploy prune`") from exc
    except CosepError as exc:
        raise ArtifactError(f"{path}: {exc}") from exc
    validate_plan_json(raw, Path(path))
    return plan


def _is_int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _check_shapes(raw: dict[str, Any]) -> str | None:
    """The first schema problem of a plan body, or None."""
    kinds = {
        "base_model": dict,
        "input_shape": list,
        "method": str,
        "config": dict,
        "groups": list,
        "history": list,
        "cost_before": dict,
        "cost_after": dict,
        "data": dict,
    }
    for key, kind in kinds.items():
        if not isinstance(raw.get(key), kind):
            return f"{key!r} must be a {kind.__name__}, found {raw.get(key)!r:.60}"
    if not raw["input_shape"] or not all(_is_int(d, 1) for d in raw["input_shape"]):
        return f"'input_shape' must be positive integers (C, H, W), found {raw['input_shape']!r:.60}"
    for key in ("cost_before", "cost_after"):
        if not all(_is_int(raw[key].get(k), 1) for k in ("macs", "params")):
            return f"{key!r} needs positive integer 'macs' and 'params'"
    for step in raw["history"]:
        ok = isinstance(step, list) and len(step) == 3 and isinstance(step[0], str) and isinstance(step[1], bool)
        if not ok or not isinstance(step[2], list) or not all(_is_int(i) for i in step[2]):
            return f"each 'history' step must be [layer, is_out_channels, [indices]], found {step!r:.80}"
    if not all(isinstance(g, dict) and isinstance(g.get("root"), str) for g in raw["groups"]):
        return "each group must be an object with a 'root' layer name"
    return None


def _check_kept(raw: dict[str, Any]) -> str | None:
    """Each group's kept channels agree with its n_kept and with the removals in the history."""
    removed = {step[0]: set(step[2]) for step in raw["history"] if step[1]}
    for g in raw["groups"]:
        kept, n, size = g.get("kept"), g.get("n_kept"), g.get("n_channels", g.get("size"))
        if kept is None:
            continue
        if not isinstance(kept, list) or not all(_is_int(i) for i in kept) or len(set(kept)) != len(kept):
            return f"group {g['root']!r}: 'kept' must be distinct channel indices"
        if n is not None and n != len(kept):
            return f"group {g['root']!r}: n_kept {n!r} but {len(kept)} kept channels listed"
        if _is_int(size, 1):
            expected = set(range(size)) - set(kept)
            if removed.get(g["root"], set()) != expected:
                return f"group {g['root']!r}: its kept channels disagree with the removals in 'history'"
    return None


def validate_plan_json(raw: dict[str, Any], source: Path) -> None:
    """Raise :class:`ArtifactError` naming the first problem of a plan body (hand-edited or damaged)."""
    problem = _check_shapes(raw) or _check_kept(raw)
    if problem is None and raw["cost_after"]["macs"] > raw["cost_before"]["macs"]:
        problem = "cost_after has more MACs than cost_before"
    if problem is not None:
        raise ArtifactError(f"{source} is not a valid pruning plan: {problem}; re-run `cosep-deploy prune`")
