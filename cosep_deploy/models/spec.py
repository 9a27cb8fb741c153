"""``ModelSpec``: the declarative description a model is rebuilt from (never a pickle).

A spec names an architecture (an in-package CIFAR model, a torchvision model, or a user factory
``package.module:factory``) plus the few numbers that shape it. Checkpoints and pruning plans store the
spec, and loading rebuilds the model from it before loading weights.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from cosep_deploy.errors import ConfigError

__all__ = ["ModelSpec"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """What to build: ``name`` as given by the user, class count, input channels and size, extra kwargs.

    ``image_size`` does not change the architecture (every model pools adaptively before its classifier);
    it records the input the model is meant for, which export and benchmarks use for example inputs.
    ``kwargs`` go to the model factory (e.g. ``{"width_mult": 0.5}`` for ``mobilenetv2_cifar``) and must
    be JSON-serialisable so the spec can be stored. Specs with kwargs are not hashable.
    """

    name: str
    num_classes: int = 10
    in_channels: int = 3
    image_size: int = 32
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"a model spec needs a non-empty model name, found {self.name!r}")
        for key in ("num_classes", "in_channels", "image_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"model spec {key} must be a positive integer, found {value!r}")
        if not isinstance(self.kwargs, dict) or not all(isinstance(k, str) for k in self.kwargs):
            raise ConfigError(f"model spec kwargs must be a dict with string keys, found {self.kwargs!r}")
        try:
            json.dumps(self.kwargs)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"model spec kwargs must be JSON-serialisable (numbers, strings, lists, dicts): {exc}"
            ) from exc
        # a private copy, so mutating the caller's dict later cannot change a frozen spec
        object.__setattr__(self, "kwargs", json.loads(json.dumps(self.kwargs)))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one input sample."""
        return (self.in_channels, self.image_size, self.image_size)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "kwargs": dict(self.kwargs),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        if not isinstance(data, dict) or "name" not in data:
            raise ConfigError(f"a model spec JSON object needs at least a 'name', found {data!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ConfigError(f"model spec JSON has unknown keys {unknown}; expected some of {sorted(fields)}")
        return cls(**data)
