"""Model factories (``tests.faults.interrupting_models:NAME``) that receive a real SIGINT while they build,
the way a Ctrl-C lands in third-party code during a command's lazy imports. Used by test_exit_codes.py."""

from __future__ import annotations

import ctypes
import signal
import time

from torch import nn


def _tiny(num_classes: int, in_channels: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    )


def swallowed(num_classes: int, in_channels: int = 1) -> nn.Module:
    """Ctrl-C inside a library that swallows it (as C code clearing any error, or ``except BaseException``,
    does): the ``KeyboardInterrupt`` never reaches the command."""
    try:
        signal.raise_signal(signal.SIGINT)  # delivered to this thread before raise() returns
        for _ in range(100):  # the handler runs at the next bytecode, inside this try
            time.sleep(0.01)
    except KeyboardInterrupt:
        pass
    return _tiny(num_classes, in_channels)


def escaped_nested_run(num_classes: int, in_channels: int = 1) -> nn.Module:
    """Ctrl-C inside Python code that a C extension runs with ``PyRun_String``; the ``KeyboardInterrupt``
    leaves it and propagates (CPython then marks it unhandled, whatever the program does with it)."""
    run = ctypes.pythonapi.PyRun_String
    run.restype = ctypes.py_object
    run.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.py_object, ctypes.py_object]
    code = b"import signal, time\nsignal.raise_signal(signal.SIGINT)\ntime.sleep(5)\n"
    scope: dict[str, object] = {}
    run(code, 257, scope, scope)  # 257: Py_file_input; raises the KeyboardInterrupt
    return _tiny(num_classes, in_channels)
