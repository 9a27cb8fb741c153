"""Progress reporting that long work shows and scripts can silence.

Library functions take an optional :class:`Progress`; the CLI passes a rich-backed one, or a silent one
under ``--quiet``. Nothing here prints when ``enabled`` is False.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from cosep_deploy.interrupts import raise_if_pending

__all__ = ["Progress", "RichProgress", "SilentProgress", "Task", "resolve_progress"]


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...

    def describe(self, text: str) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: int | None = None) -> contextlib.AbstractContextManager[Task]: ...

    def log(self, message: str) -> None: ...


class _NullTask:
    def advance(self, n: int = 1) -> None:
        raise_if_pending()  # every step of long work is a safe place to honour a Ctrl-C that was swallowed

    def describe(self, text: str) -> None:
        return None


class SilentProgress:
    """Reports nothing (``--quiet``, scripts, tests)."""

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        yield _NullTask()

    def log(self, message: str) -> None:
        return None


class _RichTask:
    def __init__(self, bar: object, task_id: object) -> None:
        self._bar = bar
        self._id = task_id

    def advance(self, n: int = 1) -> None:
        raise_if_pending()
        self._bar.advance(self._id, n)  # type: ignore[attr-defined]

    def describe(self, text: str) -> None:
        self._bar.update(self._id, description=text)  # type: ignore[attr-defined]


class RichProgress:
    """Progress bars on stderr with rich; one line per finished task."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as _Bar

        if not self.console.is_terminal:  # a pipe or a log file: one line per task, not a redrawn bar
            self.log(f"{description} ...")
            yield _NullTask()
            self.log(f"{description}: done")
            return
        bar = _Bar(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        with bar:
            tid = bar.add_task(description, total=total)
            yield _RichTask(bar, tid)

    def log(self, message: str) -> None:
        self.console.print(message, highlight=False)


def resolve_progress(progress: Progress | None) -> Progress:
    return progress if progress is not None else SilentProgress()
