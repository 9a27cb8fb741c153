"""Weights in and out, without pickle: safetensors files plus a JSON spec to rebuild the model from.

A checkpoint directory holds ``model.safetensors`` and ``model.json`` (schema ``ModelCheckpoint``: the
:class:`ModelSpec`, the sha256 of the weights file, and any extra provenance). Loading rebuilds the
model from the spec, checks the hash and loads the weights strictly. ``load_weights`` also reads
plain torch state-dict files, always with ``weights_only=True`` so a file cannot run code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cosep_deploy.artifacts import atomic_write_bytes, read_json, sha256_file, write_json
from cosep_deploy.errors import CosepError, ModelError
from cosep_deploy.models.registry import build_model, check_spec_from_file
from cosep_deploy.models.spec import ModelSpec

__all__ = [
    "CHECKPOINT_SCHEMA",
    "CHECKPOINT_VERSION",
    "META_FILE",
    "WEIGHTS_FILE",
    "load_checkpoint",
    "load_weights",
    "read_checkpoint",
    "read_state_dict",
    "save_checkpoint",
]

CHECKPOINT_SCHEMA = "ModelCheckpoint"
CHECKPOINT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
_SHOWN = 5  # problems listed per kind in a mismatch message
# BatchNorm's step counter: absent from many published checkpoints and irrelevant at inference
_OPTIONAL_SUFFIX = "num_batches_tracked"


def _is_safetensors(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as fh:  # safetensors: 8-byte little-endian header length, then a JSON '{'
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file or a torch state-dict file (optionally under 'state_dict'/'model').

    A ``module.`` prefix on every key (left by ``DataParallel``/``DDP``) is stripped.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"weights file not found: {p}")
    try:
        if _is_safetensors(p):
            from safetensors.torch import load_file

            state: Any = load_file(str(p), device="cpu")
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        # safetensors, zip and unpickling errors share no base class; each means "unreadable file"
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise ModelError(
            f"cannot read weights from {p}: {type(exc).__name__}: {first_line}. "
            f"Expected a safetensors file or a torch state dict saved with torch.save (loaded with "
            f"weights_only=True); the file may be truncated or corrupted"
        ) from exc
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        kinds = sorted({type(v).__name__ for v in state.values()}) if isinstance(state, dict) else []
        raise ModelError(
            f"{p} does not hold a state dict of tensors (found {type(state).__name__}"
            + (f" with values {kinds}" if kinds else "")
            + "); save one with torch.save(model.state_dict(), path) or safetensors"
        )
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _mismatches(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems: list[str] = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
        if items:
            more = f" (+{len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:_SHOWN])}{more}")
    return problems


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load weights from ``path`` into ``model`` strictly; a file that does not fit raises ModelError."""
    state = read_state_dict(path)
    problems = _mismatches(model, state)
    if problems:
        raise ModelError(
            f"weights in {path} do not fit {type(model).__name__}: {'; '.join(problems)}. Check that the "
            f"model spec (name, num_classes, in_channels, kwargs) matches the one the weights were saved from"
        )
    model.load_state_dict(state, strict=False)  # strictness checked above, num_batches_tracked optional
    return model


def _contiguous_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share storage (tied weights) or are non-contiguous views;
    # an independent contiguous copy of each entry stores both names, and loading restores both
    return {k: v.detach().to("cpu").clone().contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(
    model: nn.Module,
    spec: ModelSpec,
    directory: str | os.PathLike[str],
    *,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model.safetensors`` then ``model.json`` (each atomically) into ``directory``; return it."""
    from safetensors.torch import save

    out = Path(directory)
    extra = dict(extra or {})
    reserved = {"schema", "schema_version", "spec", "sha256", "weights"} & set(extra)
    if reserved:
        raise ModelError(f"checkpoint extra metadata may not use reserved keys {sorted(reserved)}")
    weights = atomic_write_bytes(out / WEIGHTS_FILE, save(_contiguous_copy(model), metadata={"format": "pt"}))
    meta = {
        "schema": CHECKPOINT_SCHEMA,
        "schema_version": CHECKPOINT_VERSION,
        "spec": spec.to_json(),
        "weights": WEIGHTS_FILE,
        "sha256": sha256_file(weights),
        **extra,
    }
    write_json(out / META_FILE, meta)
    return out


def read_checkpoint(
    directory: str | os.PathLike[str], *, trust_code: bool | None = None
) -> tuple[ModelSpec, dict[str, Any], Path]:
    """Validate a checkpoint directory: returns its spec, its metadata and the verified weights path.

    A ``package.module:factory`` spec is refused unless trusted (see
    :func:`~cosep_deploy.models.registry.check_spec_from_file`).

    For callers that build the model themselves (a pruned model: base spec + plan) and then call
    :func:`load_weights`.
    """
    d = Path(directory)
    meta_path, weights_path = d / META_FILE, d / WEIGHTS_FILE
    if not meta_path.is_file():
        raise ModelError(f"no checkpoint at {d}: {META_FILE} is missing (write one with save_checkpoint)")
    try:
        meta = read_json(meta_path, what="checkpoint metadata")
    except CosepError as exc:
        raise ModelError(str(exc)) from exc
    if not isinstance(meta, dict) or meta.get("schema") != CHECKPOINT_SCHEMA:
        found = meta.get("schema") if isinstance(meta, dict) else type(meta).__name__
        raise ModelError(f"{meta_path} is not a {CHECKPOINT_SCHEMA} file (schema {found!r})")
    if meta.get("schema_version") != CHECKPOINT_VERSION:
        raise ModelError(
            f"{meta_path} has schema version {meta.get('schema_version')!r}; this cosep-deploy reads version "
            f"{CHECKPOINT_VERSION}. Re-save the checkpoint with this version"
        )
    if not weights_path.is_file():
        raise ModelError(f"checkpoint {d} has {META_FILE} but its weights file {WEIGHTS_FILE} is missing")
    actual = sha256_file(weights_path)
    if actual != meta.get("sha256"):
        raise ModelError(
            f"{weights_path} does not match its metadata: sha256 {actual[:12]}... vs recorded "
            f"{str(meta.get('sha256'))[:12]}...; the weights were changed or the copy is incomplete"
        )
    try:
        spec = ModelSpec.from_json(meta.get("spec", {}))
    except CosepError as exc:
        raise ModelError(f"{meta_path} holds an invalid model spec: {exc}") from exc
    check_spec_from_file(spec, meta_path, trust_code=trust_code)
    return spec, meta, weights_path


def load_checkpoint(
    directory: str | os.PathLike[str], *, trust_code: bool | None = None
) -> tuple[nn.Module, ModelSpec, dict[str, Any]]:
    """Rebuild the model from a checkpoint's spec and load its weights; the model is in eval mode.

    ``trust_code``: build a ``package.module:factory`` spec read from the file (default: the process's
    ``--trust-model-code``)."""
    spec, meta, weights_path = read_checkpoint(directory, trust_code=trust_code)
    model = build_model(spec)
    load_weights(model, weights_path)
    return model.eval(), spec, meta
