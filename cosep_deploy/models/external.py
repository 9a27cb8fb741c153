"""Models from outside this package: torchvision classification models and user factories.

torchvision models are built with ``weights=None`` (random init; nothing is downloaded). When
``in_channels`` is not 3, the first ``Conv2d`` in registration order (the stem of every torchvision
classification model: ``conv1``, ``features.0.0``, ``conv_proj``...) is replaced by a fresh conv with the
same settings and the requested input channels, freshly initialised.

A user factory is named ``package.module:factory``; it is imported and called with ``num_classes`` and
``in_channels`` if its signature accepts them (plus the spec's kwargs), else with the kwargs alone.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from cosep_deploy.errors import ModelError, unknown_name
from cosep_deploy.models.spec import ModelSpec

__all__ = ["build_from_factory", "build_torchvision", "replace_first_conv", "torchvision_names"]


@functools.lru_cache(maxsize=1)
def _torchvision_names() -> tuple[str, ...]:
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


def torchvision_names() -> list[str]:
    """torchvision's image classification model names (detection, video... models are excluded)."""
    return list(_torchvision_names())


def replace_first_conv(model: nn.Module, in_channels: int) -> nn.Module:
    """Swap the first ``Conv2d`` of ``model`` for one taking ``in_channels`` inputs (in place)."""
    for qualname, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            if module.in_channels == in_channels:
                return model
            if module.groups != 1:
                raise ModelError(f"cannot change the input channels of grouped stem conv {qualname!r}")
            new = nn.Conv2d(
                in_channels,
                module.out_channels,
                module.kernel_size,  # type: ignore[arg-type]
                stride=module.stride,  # type: ignore[arg-type]
                padding=module.padding,  # type: ignore[arg-type]
                dilation=module.dilation,  # type: ignore[arg-type]
                bias=module.bias is not None,
                padding_mode=module.padding_mode,
            )
            parent_name, _, attr = qualname.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, new)
            return model
    raise ModelError(
        f"{type(model).__name__} has no Conv2d whose input channels could be set to {in_channels}; "
        f"use in_channels=3 or a model with a convolutional stem"
    )


def build_torchvision(name: str, spec: ModelSpec) -> nn.Module:
    """torchvision model ``name``, random init, ``num_classes`` outputs, ``in_channels`` inputs."""
    names = _torchvision_names()
    if name not in names:
        raise ModelError(unknown_name("torchvision model", name, names))
    import torchvision

    kwargs: dict[str, Any] = dict(spec.kwargs)
    # inception_v3 and googlenet warn unless told how to initialise; their aux heads need 299x299-ish inputs
    if name in ("inception_v3", "googlenet"):
        kwargs.setdefault("init_weights", True)
        kwargs.setdefault("aux_logits", False)
    try:
        model = torchvision.models.get_model(name, weights=None, num_classes=spec.num_classes, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot build torchvision model {name!r} with kwargs {kwargs}: {exc}") from exc
    if spec.in_channels != 3:
        replace_first_conv(model, spec.in_channels)
    return model


def _accepts(fn: Callable[..., Any], param: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature: call with kwargs only
        return False
    return param in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def build_from_factory(target: str, spec: ModelSpec) -> nn.Module:
    """Import ``package.module:factory`` and call it; any failure becomes a :class:`ModelError`."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ModelError(f"model factory {target!r} must look like 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error in user code is the user's: report it, keep the cause
        raise ModelError(
            f"cannot import module {module_name!r} for model factory {target!r}: "
            f"{type(exc).__name__}: {exc}. Make sure it is importable (installed, or on PYTHONPATH)"
        ) from exc
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            public = sorted(n for n in dir(module) if not n.startswith("_"))
            raise ModelError(unknown_name(f"factory in module {module_name!r}", attr, public))
        factory = getattr(factory, part)
    if not callable(factory):
        raise ModelError(f"{target!r} is a {type(factory).__name__}, not a callable model factory")
    kwargs: dict[str, Any] = dict(spec.kwargs)
    if _accepts(factory, "num_classes"):
        kwargs.setdefault("num_classes", spec.num_classes)
    if _accepts(factory, "in_channels"):
        kwargs.setdefault("in_channels", spec.in_channels)
    try:
        model = factory(**kwargs)
    except Exception as exc:
        raise ModelError(f"model factory {target!r} failed with kwargs {kwargs}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise ModelError(f"model factory {target!r} returned a {type(model).__name__}, expected an nn.Module")
    return model
