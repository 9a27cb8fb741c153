"""Selection methods by name: ``@register_method`` on a :class:`SelectionMethod` subclass makes it
available to :class:`~cosep_deploy.prune.api.PruneConfig` (``method=...``) and the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from cosep_deploy.errors import ConfigError, unknown_name

if TYPE_CHECKING:
    from cosep_deploy.prune.methods.base import SelectionMethod

__all__ = ["get_method", "method_names", "register_method"]

_METHODS: dict[str, type[SelectionMethod]] = {}
M = TypeVar("M", bound="type[SelectionMethod]")


def register_method(cls: M) -> M:
    """Class decorator: register a selection method under its ``name``."""
    name = cls.name
    if name in _METHODS and _METHODS[name] is not cls:
        raise ConfigError(f"selection method {name!r} is registered twice")
    _METHODS[name] = cls
    return cls


def _load_builtins() -> None:
    """The built-in methods, registered here (their modules do not import the registry: no cycle)."""
    from cosep_deploy.prune.methods.cosep import CosepMethod, RandomClustersMethod
    from cosep_deploy.prune.methods.norms import EmpMethod, L1Method, RandomMethod, UniformMethod

    for cls in (CosepMethod, RandomClustersMethod, L1Method, UniformMethod, EmpMethod, RandomMethod):
        _METHODS.setdefault(cls.name, cls)


def get_method(name: str) -> type[SelectionMethod]:
    """The registered method class called ``name`` (a "did you mean" error otherwise)."""
    _load_builtins()
    if name not in _METHODS:
        raise ConfigError(unknown_name("method", name, sorted(_METHODS)))
    return _METHODS[name]


def method_names() -> tuple[str, ...]:
    _load_builtins()
    return tuple(sorted(_METHODS))
