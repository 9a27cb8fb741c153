"""Whether model names that import code (``package.module:factory``) may be read from files.

A name the user types (``train --model pkg.mod:factory``) or a factory the API caller passes is trusted. A
name read back from a run directory or a plan (``dense/model.json``, ``plan.json``) is refused unless the
user says so (``cosep-deploy --trust-model-code``, :func:`trusted_model_code`, or ``trust_code=True`` on the
loader): a hand-edited file must not be able to run ``os:system``. Standard library only (the CLI sets it
before torch is loaded).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

__all__ = ["code_trusted", "is_code_name", "set_trust_model_code", "trusted_model_code"]

_TRUST: contextvars.ContextVar[bool] = contextvars.ContextVar("cosep_trust_model_code", default=False)


def is_code_name(name: str) -> bool:
    """A ``package.module:factory`` name, which importing would run (``tv:NAME`` is not code)."""
    name = name.strip()
    return ":" in name and not name.startswith("tv:")


def set_trust_model_code(value: bool) -> None:
    """For this process (the CLI's ``--trust-model-code``)."""
    _TRUST.set(bool(value))


def code_trusted() -> bool:
    return _TRUST.get()


@contextlib.contextmanager
def trusted_model_code(value: bool = True) -> Iterator[None]:
    """Within the block, ``module:factory`` names read from files are (or are not) built."""
    token = _TRUST.set(value)
    try:
        yield
    finally:
        _TRUST.reset(token)
