"""One error tree for the whole toolchain.

User mistakes raise a subclass of :class:`CosepError`; the CLI prints its message as one line and exits 1.
Bugs raise :class:`InternalError` (or any other exception) and keep their traceback.
Messages say what failed, what was expected and found, and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "BenchError",
    "ConfigError",
    "CosepError",
    "DataError",
    "EngineBuildError",
    "EngineLoadError",
    "ExportError",
    "ExportValidationError",
    "InternalError",
    "MissingDependencyError",
    "ModelError",
    "PlanMismatchError",
    "PruneError",
    "SeparabilityError",
    "TargetMismatchError",
    "unknown_name",
]


class CosepError(Exception):
    """A user-facing error: bad input, missing files, unsupported requests."""


class ConfigError(CosepError):
    """An invalid option, spec string or configuration value."""


class DataError(CosepError):
    """A dataset is missing, malformed or unusable (too few samples per class, NaN...)."""


class ModelError(CosepError):
    """An unknown model name, a factory that fails, weights that do not fit."""


class SeparabilityError(CosepError):
    """Statistics or distances cannot be computed from the given input."""


class PruneError(CosepError):
    """Pruning cannot proceed (unsupported architecture, bad layer names...)."""


class PlanMismatchError(PruneError):
    """A pruning plan does not match the model it is applied to."""


class ExportError(CosepError):
    """ONNX export or precision conversion failed."""


class ExportValidationError(ExportError):
    """An exported model's outputs differ from the reference beyond tolerance."""


class EngineBuildError(CosepError):
    """An engine (ONNX Runtime session, TensorRT plan) could not be built."""


class EngineLoadError(CosepError):
    """An engine file is corrupted, truncated or unreadable."""


class TargetMismatchError(EngineLoadError):
    """An engine was built for another runtime version, device or target."""


class BenchError(CosepError):
    """A benchmark request is inconsistent (mismatched settings, missing stages...)."""


class MissingDependencyError(CosepError):
    """An optional backend is not installed; the message names the extra to install."""


class InternalError(Exception):
    """A bug in cosep-deploy, not a user mistake: keep the traceback and report it."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    """Message for an unknown name: lists close matches ("did you mean") and the valid choices."""
    choices = sorted(known)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    shown = ", ".join(choices[:30]) + (", ..." if len(choices) > 30 else "")
    return f"unknown {kind} {name!r}.{hint} Known: {shown}"
