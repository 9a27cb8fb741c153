"""State shared by every command (``--quiet``), kept apart from the command group so command modules can
import it without importing the group that imports them."""

from __future__ import annotations

from typing import Any

import click

__all__ = ["Context"]


class Context:
    """Options shared by every command (``--quiet``)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

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
