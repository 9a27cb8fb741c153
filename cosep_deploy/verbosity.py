"""How much the tool says: one Python ``logging`` hierarchy (``cosep_deploy.*``) whose level also sets the
verbosity of the engines underneath (ONNX Runtime's session log severity, the TensorRT logger, trtexec's
``--verbose``), as ``trtexec --verbose`` and ``polygraphy -v`` users expect.

The CLI's ``-v`` (INFO) and ``-vv`` (DEBUG) call :func:`configure_logging`; library users set the level of the
``cosep_deploy`` logger themselves, and the engines follow it. At the default level (WARNING) nothing is added
to what a command prints. Log lines go to stderr, so ``--json`` output on stdout stays clean.
"""

from __future__ import annotations

import logging
import sys

__all__ = [
    "LOGGER_NAME",
    "configure_logging",
    "debug_enabled",
    "get_logger",
    "level_for",
    "ort_log_severity",
]

LOGGER_NAME = "cosep_deploy"


def level_for(verbosity: int) -> int:
    """The logging level of ``-v`` repeated ``verbosity`` times: 0 WARNING, 1 INFO, 2 or more DEBUG."""
    return logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (click's test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(verbosity: int) -> None:
    """Set the ``cosep_deploy`` logger's level from ``verbosity`` and give it one stderr handler (once: calling
    again only changes the level)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level_for(verbosity))
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(name)s: %(message)s"))
        logger.addHandler(handler)


def get_logger(name: str) -> logging.Logger:
    """The logger of a module (``__name__`` under ``cosep_deploy``)."""
    return logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")


def debug_enabled() -> bool:
    """``-vv``: the engines underneath log verbosely too (ONNX Runtime severity 0, TensorRT VERBOSE, trtexec
    ``--verbose``)."""
    return logging.getLogger(LOGGER_NAME).isEnabledFor(logging.DEBUG)


def ort_log_severity() -> int:
    """ONNX Runtime's ``SessionOptions.log_severity_level`` for the current level: 0 verbose with ``-vv``, 1 info
    with ``-v``, else 3 (errors only: ORT's warnings about unused initializers would be noise)."""
    logger = logging.getLogger(LOGGER_NAME)
    if logger.isEnabledFor(logging.DEBUG):
        return 0
    return 1 if logger.isEnabledFor(logging.INFO) else 3
