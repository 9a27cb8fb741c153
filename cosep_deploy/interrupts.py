"""Ctrl-C that is never lost, in the ``cosep-deploy`` process.

Python turns SIGINT into a ``KeyboardInterrupt`` raised wherever the main thread happens to be. Code that is
not ours can swallow it there: C extensions that clear any error (``PyObject_HasAttr``, ``PyErr_Clear``)
while running Python code, or a library's ``except BaseException``. A Ctrl-C that lands during the lazy
imports of torch, scipy or scikit-learn is then forgotten and the command runs to its end, exit 0.

The command line installs :func:`install`: its handler records the interrupt before raising. Every progress
step (:mod:`cosep_deploy.progress`) calls :func:`raise_if_pending`, so a swallowed interrupt is raised again
at the next training batch, clustering step or benchmark iteration, and the command line checks once more
when a command returns. Library use (no :func:`install`) is unaffected: nothing is ever pending.
"""

from __future__ import annotations

import signal
from types import FrameType

__all__ = ["install", "raise_if_pending"]

_pending = False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = True
    raise KeyboardInterrupt


def install() -> None:
    """Record every SIGINT before raising ``KeyboardInterrupt`` (main thread of the CLI process only)."""
    signal.signal(signal.SIGINT, _on_sigint)


def raise_if_pending() -> None:
    """Raise ``KeyboardInterrupt`` again if an interrupt arrived: a place where stopping is safe."""
    if _pending:
        raise KeyboardInterrupt
