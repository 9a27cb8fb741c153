"""Model registry: a name in a :class:`ModelSpec` becomes an ``nn.Module``.

Three kinds of names resolve, in this order:

1. ``package.module:factory``: a user factory, imported and called (see :mod:`.external`);
2. ``tv:NAME``: a torchvision classification model, random init;
3. a plain name: the in-package CIFAR models registered here (``resnet20``, ``resnet56``, ``vgg16_cifar``,
   ``vgg19_cifar``, ``mobilenetv2_cifar``, ``densenet40``), else a torchvision model of that name.

Our names never clash with torchvision's, so a plain torchvision name (``resnet18``) always means the
torchvision model.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from cosep_deploy.errors import ModelError, UntrustedCodeError, unknown_name
from cosep_deploy.models.spec import ModelSpec

__all__ = [
    "ModelEntry",
    "build_model",
    "check_spec_from_file",
    "count_params",
    "describe_model",
    "list_models",
    "register_model",
    "registered_models",
]

F = TypeVar("F", bound=Callable[..., nn.Module])

# modules whose import registers the in-package models
_BUILTIN_MODULES = ("cifar_resnet", "vgg", "mobilenetv2", "densenet")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """One in-package model: its factory takes ``num_classes``, ``in_channels`` and its own kwargs."""

    name: str
    factory: Callable[..., nn.Module]
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, description: str) -> Callable[[F], F]:
    """Decorator registering a model factory under ``name`` (a bug to register a name twice)."""

    def decorate(factory: F) -> F:
        if name in _REGISTRY and _REGISTRY[name].factory is not factory:
            raise ValueError(f"model name {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(name=name, factory=factory, description=description)
        return factory

    return decorate


def registered_models() -> dict[str, ModelEntry]:
    """The in-package models, by name, in registration order."""
    order = [f"{__package__}.{module}" for module in _BUILTIN_MODULES]
    for module in order:
        importlib.import_module(module)
    rank = {name: i for i, name in enumerate(_REGISTRY)}

    def key(entry: ModelEntry) -> tuple[int, int]:
        module = entry.factory.__module__
        return (order.index(module) if module in order else len(order), rank[entry.name])

    # a stable order (ResNets, VGGs, MobileNetV2, DenseNet), whatever order the modules were imported in
    return {e.name: e for e in sorted(_REGISTRY.values(), key=key)}


def list_models() -> list[str]:
    """Every plain model name: ours first, then torchvision's classification models."""
    from cosep_deploy.models.external import torchvision_names

    return [*registered_models(), *torchvision_names()]


def _build_registered(entry: ModelEntry, spec: ModelSpec) -> nn.Module:
    try:
        return entry.factory(num_classes=spec.num_classes, in_channels=spec.in_channels, **spec.kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot build {spec.name!r} with kwargs {spec.kwargs}: {exc}") from exc


def _build(spec: ModelSpec) -> nn.Module:
    from cosep_deploy.models import external

    name = spec.name.strip()
    if name.startswith("tv:"):
        return external.build_torchvision(name[3:], spec)
    if ":" in name:
        return external.build_from_factory(name, spec)
    entries = registered_models()
    if name in entries:
        return _build_registered(entries[name], spec)
    if name in external.torchvision_names():
        return external.build_torchvision(name, spec)
    raise ModelError(
        unknown_name("model", name, list_models())
        + ". Use 'tv:NAME' for torchvision models or 'package.module:factory' for your own"
    )


def build_model(spec: ModelSpec | str, *, seed: int | None = None) -> nn.Module:
    """Build the model ``spec`` describes, randomly initialised (no pretrained weights are fetched).

    With ``seed``, initialisation is reproducible and the caller's global RNG state is left untouched.
    A plain string is a spec with default class count (10), channels (3) and size (32).
    """
    if isinstance(spec, str):
        spec = ModelSpec(name=spec)
    if seed is None:
        model = _build(spec)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _build(spec)
    if not isinstance(model, nn.Module):
        raise ModelError(f"model {spec.name!r} built a {type(model).__name__}, expected a torch.nn.Module")
    return model


def check_spec_from_file(spec: ModelSpec, source: object, *, trust_code: bool | None = None) -> ModelSpec:
    """Refuse a spec read from ``source`` (a file) whose name would import code, unless trusted.

    Trusted: ``trust_code=True``, or ``None`` and the process trusts model code (``--trust-model-code``,
    :func:`cosep_deploy.trust.trusted_model_code`). Registered and torchvision names always pass.
    """
    from cosep_deploy.trust import code_trusted, is_code_name

    trusted = code_trusted() if trust_code is None else trust_code
    if is_code_name(spec.name) and not trusted:
        raise UntrustedCodeError(
            f"{source} names the model factory {spec.name!r}: importing it would run its code, and names read "
            "from files are not trusted. If you wrote it, pass --trust-model-code (cosep-deploy "
            "--trust-model-code COMMAND ...) or, from Python, trust_code=True"
        )
    return spec


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def describe_model(name: str) -> dict[str, Any]:
    """A JSON-friendly summary of a registered model (for ``list`` commands)."""
    entry = registered_models().get(name)
    if entry is None:
        raise ModelError(unknown_name("in-package model", name, registered_models()))
    return {"name": entry.name, "description": entry.description}
