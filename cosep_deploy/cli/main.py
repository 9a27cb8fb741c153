"""The ``cosep-deploy`` command line: one thin command per stage over the public Python API.

User mistakes (any :class:`~cosep_deploy.errors.CosepError`) print one ``error:`` line and exit 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .._version import __version__
from ..errors import CosepError

__all__ = ["Context", "cli", "main"]


class Context:
    """Options shared by every command (``--quiet``)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def progress(self) -> Any:
        from ..progress import RichProgress, SilentProgress

        return SilentProgress() if self.quiet else RichProgress()

    def echo(self, message: str = "") -> None:
        if not self.quiet:
            click.echo(message)

    def print(self, renderable: Any) -> None:
        """A rich renderable (a table) on stdout, unless --quiet."""
        if not self.quiet:
            from rich.console import Console

            Console().print(renderable)


class _Group(click.Group):
    """Turns user errors into one line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CosepError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cosep-deploy")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or messages (errors still print).")
@click.pass_context
def cli(ctx: click.Context, quiet: bool) -> None:
    """CoSeP pruning, ONNX export, engine builds and fair benchmarks for NVIDIA edge inference.

    Typical use: `cosep-deploy pipeline --out runs/demo` runs every stage on the embedded digits data.
    """
    from ..distributed import init_from_env, is_main_process

    init_from_env()  # under torchrun: join the process group; only rank 0 reports
    ctx.obj = Context(quiet or not is_main_process())


def _register() -> None:
    from . import bench, build, compare, doctor, export, finetune, pipeline, profile, prune, report, targets, train

    for module in (train, prune, finetune, export, build, bench, profile, compare, report, pipeline, targets, doctor):
        cli.add_command(module.command)


_register()


def main(argv: list[str] | None = None) -> None:
    from ..distributed import finish

    try:
        cli.main(args=argv, prog_name="cosep-deploy", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finish(code)  # under torchrun: leave the process group and exit; otherwise a no-op
        raise


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
