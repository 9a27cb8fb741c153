"""One error tree for the whole toolchain.

User mistakes raise a subclass of :class:`CosepError`; the CLI prints its message as one line and exits
with the error's ``exit_code`` (docs/exit-codes.md): 1 bad input or state, 3 a missing dependency or
hardware. Bugs raise :class:`InternalError` (or any other exception): exit code 4, one line saying how to
report it, and the traceback with ``--debug``. Messages say what failed, what was expected and found, and
how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_MISSING",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_USER",
    "ArtifactError",
    "BenchError",
    "ConfigError",
    "CosepError",
    "DataError",
    "EngineBuildError",
    "EngineLoadError",
    "ExportError",
    "ExportValidationError",
    "HardwareError",
    "InternalError",
    "LatencyTableError",
    "MissingDependencyError",
    "ModelError",
    "PlanMismatchError",
    "PruneError",
    "RunDirError",
    "RunLockedError",
    "SeparabilityError",
    "StaleArtifactError",
    "StorageError",
    "TargetMismatchError",
    "UntrustedCodeError",
    "exit_code_for",
    "unknown_name",
]

EXIT_OK = 0
EXIT_USER = 1  # bad input or state
EXIT_USAGE = 2  # a command line click cannot parse
EXIT_MISSING = 3  # a missing dependency or hardware
EXIT_INTERNAL = 4  # a bug in cosep-deploy
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class CosepError(Exception):
    """A user-facing error: bad input, missing files, unsupported requests."""

    exit_code: int = EXIT_USER


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

    exit_code = EXIT_MISSING


class HardwareError(CosepError):
    """The hardware a request needs (a GPU, a Jetson board, a device index) is not here."""

    exit_code = EXIT_MISSING


class ArtifactError(CosepError):
    """An artifact file is unreadable, fails its schema or contradicts itself (hand-edited, damaged)."""


class StaleArtifactError(ArtifactError):
    """Artifacts in a run directory come from different chains (a stage re-ran and its consumers did not)."""


class LatencyTableError(ArtifactError):
    """A latency table that cannot be used: made for another device/runtime/batch, stale, or absent."""


class RunDirError(CosepError):
    """A directory is not a run directory (no marker), or the tool would overwrite files it does not own."""


class RunLockedError(RunDirError):
    """Another process holds the run directory's lock."""


class StorageError(CosepError):
    """The disk refused a write: full, read-only, or no permission."""


class UntrustedCodeError(ModelError):
    """A ``module:factory`` model name read from a file, which would import and run code, not trusted."""


class InternalError(Exception):
    """A bug in cosep-deploy, not a user mistake: keep the traceback and report it."""


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an exception reaching the command line."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, CosepError):
        return int(exc.exit_code)
    return EXIT_INTERNAL


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    """Message for an unknown name: lists close matches ("did you mean") and the valid choices."""
    choices = sorted(known)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    shown = ", ".join(choices[:30]) + (", ..." if len(choices) > 30 else "")
    return f"unknown {kind} {name!r}.{hint} Known: {shown}"
