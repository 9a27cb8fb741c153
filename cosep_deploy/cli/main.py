"""The ``cosep-deploy`` command line: one thin command per stage over the public Python API.

User mistakes (any :class:`~cosep_deploy.errors.CosepError`) print one ``error:`` line and exit 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from cosep_deploy._version import __version__
from cosep_deploy.cli.context import Context
from cosep_deploy.errors import CosepError

__all__ = ["cli", "main"]


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
@click.option(
    "--target-file",
    "target_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A target profile TOML of your own, usable by its name in every --target (repeatable). "
    "Folders of them: $COSEP_DEPLOY_TARGETS.",
)
@click.pass_context
def cli(ctx: click.Context, quiet: bool, target_files: tuple[str, ...]) -> None:
    """CoSeP pruning, ONNX export, engine builds and fair benchmarks for NVIDIA edge inference.

    Typical use: `cosep-deploy pipeline --out runs/demo` runs every stage on the embedded digits data.
    """
    from cosep_deploy.env import launched_by_torchrun
    from cosep_deploy.targets import register_target_file

    for path in target_files:
        register_target_file(path)
    main_process = True
    if launched_by_torchrun():  # torch is imported only then: --help and plain runs start without it
        from cosep_deploy.distributed import init_from_env, is_main_process

        init_from_env()  # join the process group; only rank 0 reports
        main_process = is_main_process()
    ctx.obj = Context(quiet or not main_process)


def _register() -> None:
    from cosep_deploy.cli import (
        bench,
        build,
        check,
        collect,
        compare,
        doctor,
        export,
        finetune,
        pipeline,
        profile,
        prune,
        report,
        targets,
        train,
    )

    for module in (
        train,
        prune,
        finetune,
        export,
        build,
        bench,
        profile,
        compare,
        report,
        pipeline,
        targets,
        doctor,
        check,
        collect,
    ):
        cli.add_command(module.command)


_register()


def main(argv: list[str] | None = None) -> None:
    from cosep_deploy.env import launched_by_torchrun

    try:
        cli.main(args=argv, prog_name="cosep-deploy", standalone_mode=True)
    except SystemExit as exc:
        if launched_by_torchrun():
            from cosep_deploy.distributed import finish

            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            finish(code)  # leave the process group and exit
        raise


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
