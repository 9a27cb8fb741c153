"""State shared by every command (``--quiet``, ``--verbose``), kept apart from the command group so command
modules can import it without importing the group that imports them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["Context", "verbose_after_command", "verbose_option"]

F = TypeVar("F", bound=Callable[..., Any])
_VERBOSE_HELP = (
    "Say more on stderr: -v what is read, written and run (INFO; ONNX Runtime and TensorRT info), -vv also "
    "their verbose logs and trtexec --verbose (DEBUG). Repeatable; before or after the command."
)


def verbose_option(f: F) -> F:
    """``-v/--verbose`` of the command group (counted: -v INFO, -vv DEBUG)."""
    return click.option("-v", "--verbose", count=True, help=_VERBOSE_HELP)(f)


def _more_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    if not value:
        return
    from cosep_deploy.verbosity import configure_logging

    obj = ctx.find_object(Context)
    total = value + (obj.verbose if obj is not None else 0)
    if obj is not None:
        obj.verbose = total
    configure_logging(total)


def verbose_after_command() -> click.Option:
    """The same ``-v`` given after the command's name (``cosep-deploy bench -vv --run R``), adding to the
    group's."""
    return click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_more_verbose, help=_VERBOSE_HELP)


class Context:
    """Options shared by every command (``--quiet``, ``--verbose``)."""

    def __init__(self, quiet: bool, *, verbose: int = 0) -> None:
        self.quiet = quiet
        self.verbose = verbose

    def progress(self) -> Any:
        from cosep_deploy.progress import RichProgress, SilentProgress

        return SilentProgress() if self.quiet else RichProgress()

    def echo(self, message: str = "") -> None:
        if not self.quiet:
            click.echo(message)

    def print(self, renderable: Any) -> None:
        """A rich renderable (a table) on stdout, unless --quiet."""
        if not self.quiet:
            from rich.console import Console

            Console().print(renderable)
