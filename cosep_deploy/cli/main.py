"""The ``cosep-deploy`` command line: one thin command per stage over the public Python API.

Every failure is one ``error:`` line on stderr and a documented exit code (docs/exit-codes.md): 1 bad input
or state, 2 usage, 3 a missing dependency or hardware, 4 an internal error (a bug: the line says how to
report it; ``--debug`` shows the traceback), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import sys
from types import TracebackType


def _interrupted_while_starting(
    kind: type[BaseException], exc: BaseException, tb: TracebackType | None, previous: object = sys.excepthook
) -> None:
    """Ctrl-C while the CLI's own modules are still importing, before any command runs: exit 130 with the
    command's line, instead of Python's traceback and death by SIGINT (exit -2). Nothing was written yet."""
    if issubclass(kind, KeyboardInterrupt):
        sys.stderr.write("interrupted before the command started; nothing was written\n")
        sys.stderr.flush()
        os._exit(130)
    previous(kind, exc, tb)  # type: ignore[operator]


# run as the CLI (the console script, `python -m cosep_deploy[.cli.main]`), not imported by a program or a test
_AS_PROCESS = os.path.basename(sys.argv[0]) == "cosep-deploy" or os.path.realpath(sys.argv[0]) in {
    os.path.realpath(__file__),
    os.path.realpath(os.path.join(os.path.dirname(__file__), os.pardir, "__main__.py")),
}
_EXIT_130 = False  # set when this process decided to exit 130 (interrupted)


def _exit_130_when_interrupted() -> None:
    """The last exit handler of the process: keep exit code 130 after an interrupt.

    Under ``python -m``, CPython kills the process with SIGINT at exit (exit -2) when a KeyboardInterrupt
    ever left Python code that a C extension ran through ``PyRun_*`` (as some do while importing), even
    though the command caught it and asked for 130. Everything was written or removed by now."""
    if _EXIT_130:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(130)


if _AS_PROCESS:
    import atexit

    sys.excepthook = _interrupted_while_starting
    atexit.register(_exit_130_when_interrupted)  # first registered, so it runs after every other one

import errno  # noqa: E402  (after the hook: an interrupt during these imports exits 130 too)
import signal  # noqa: E402
from typing import Any, NoReturn  # noqa: E402

import click  # noqa: E402

from cosep_deploy import interrupts  # noqa: E402
from cosep_deploy._version import __version__  # noqa: E402
from cosep_deploy.cli.context import Context, verbose_after_command, verbose_option  # noqa: E402
from cosep_deploy.errors import (  # noqa: E402
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USER,
    CosepError,
    exit_code_for,
)
from cosep_deploy.verbosity import configure_logging  # noqa: E402

__all__ = ["ISSUES_URL", "cli", "main"]

if _AS_PROCESS:
    interrupts.install()  # a Ctrl-C that a library swallows is still honoured (see cosep_deploy.interrupts)

ISSUES_URL = "https://github.com/cosep-deploy/cosep-deploy/issues"
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


def _fail(ctx: click.Context, message: str, code: int) -> NoReturn:
    click.echo(message.replace("\n", " "), err=True)
    ctx.exit(code)
    raise AssertionError("unreachable")  # ctx.exit raises


def _storage_message(exc: OSError) -> str | None:
    """One line for a disk that refused a write (full, read-only, no permission), else None."""
    if exc.errno not in _STORAGE_ERRNOS:
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    reason = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}.get(
        exc.errno or 0, exc.strerror or str(exc)
    )
    return f"error: cannot write{where}: {reason}; nothing partial was kept. Free space or choose another --out"


class _Group(click.Group):
    """Turns every failure into one line and its documented exit code."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except KeyboardInterrupt:  # while parsing: click would say "Aborted!" and exit 1
            click.echo("interrupted; nothing was written", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            value = super().invoke(ctx)
            interrupts.raise_if_pending()  # a Ctrl-C that was swallowed on its way up, after the last progress step
            return value
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except CosepError as exc:
            if debug:
                raise
            _fail(ctx, f"error: {exc}", exit_code_for(exc))
        except KeyboardInterrupt:
            if _AS_PROCESS:  # the process exits now: a second Ctrl-C must not cut that short (a process this
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # one starts would inherit the ignore: not in-process)
            _fail(ctx, "interrupted; finished stages are kept and the next run resumes", EXIT_INTERRUPTED)
        except OSError as exc:
            message = _storage_message(exc)
            if message is None or debug:
                return self._internal(ctx, exc, debug)
            _fail(ctx, message, EXIT_USER)
        except Exception as exc:
            return self._internal(ctx, exc, debug)

    @staticmethod
    def _internal(ctx: click.Context, exc: Exception, debug: bool) -> NoReturn:
        if debug:
            raise exc
        _fail(
            ctx,
            f"internal error: {type(exc).__name__}: {str(exc).strip()[:300]} (a bug in cosep-deploy "
            f"{__version__}; re-run with --debug for the traceback and report it at {ISSUES_URL})",
            EXIT_INTERNAL,
        )


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cosep-deploy")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or messages (errors still print).")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error instead of one line.")
@verbose_option
@click.option(
    "--trust-model-code",
    is_flag=True,
    help="Allow model names of the form package.module:factory read from run directories and plans "
    "(importing them runs their code).",
)
@click.option(
    "--target-file",
    "target_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A target profile TOML of your own, usable by its name in every --target (repeatable). "
    "Folders of them: $COSEP_DEPLOY_TARGETS.",
)
@click.pass_context
def cli(
    ctx: click.Context, quiet: bool, debug: bool, verbose: int, trust_model_code: bool, target_files: tuple[str, ...]
) -> None:
    """CoSeP pruning, ONNX export, engine builds and fair benchmarks for NVIDIA edge inference.

    Typical use: `cosep-deploy pipeline --out runs/demo` runs every stage on the embedded digits data.
    """
    from cosep_deploy.env import launched_by_torchrun
    from cosep_deploy.targets import register_target_file
    from cosep_deploy.trust import set_trust_model_code

    set_trust_model_code(trust_model_code)
    for path in target_files:
        register_target_file(path)
    configure_logging(verbose)  # also resets the level a previous in-process invocation set
    main_process = True
    if launched_by_torchrun():  # torch is imported only then: --help and plain runs start without it
        from cosep_deploy.distributed import init_from_env, is_main_process

        init_from_env()  # join the process group; only rank 0 reports
        main_process = is_main_process()
    ctx.obj = Context(quiet or not main_process, verbose=verbose)


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
        module.command.params.append(verbose_after_command())  # `cosep-deploy bench -v ...` works too
        cli.add_command(module.command)


_register()


def main(argv: list[str] | None = None) -> None:
    from cosep_deploy.env import launched_by_torchrun

    global _EXIT_130
    try:
        try:
            cli.main(args=argv, prog_name="cosep-deploy", standalone_mode=True)
        except KeyboardInterrupt:  # outside a command (click itself turns one while parsing into exit 1)
            click.echo("interrupted; nothing was written", err=True)
            sys.exit(EXIT_INTERRUPTED)
    except SystemExit as exc:
        _EXIT_130 = _AS_PROCESS and exc.code == EXIT_INTERRUPTED
        if launched_by_torchrun():
            from cosep_deploy.distributed import finish

            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            finish(code)  # leave the process group and exit
        raise


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
