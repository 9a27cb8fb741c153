"""Every ``cosep-deploy`` command line the documentation shows is one the CLI accepts (parsed by click,
not run), and the quick ones that need no run directory run for real."""

from __future__ import annotations

import json
import re
import shlex
import warnings
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import cosep_deploy
from cosep_deploy.cli.main import cli

REPO = Path(cosep_deploy.__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "calibration" / "README.md"]
_INVOCATION = re.compile(r"(?:^|\s)(?:cosep-deploy|-m cosep_deploy)\s+(.*)$")


def _command_lines() -> list[tuple[str, str]]:
    """(file:line, argument string) for every command line inside a fenced code block or inline code."""
    found = []
    for doc in (d for d in DOCS if d.is_file()):
        in_block = False
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_block = not in_block
                continue
            # inline code counts when it is a whole command line (with options), not a mention of a command
            snippets = [line] if in_block else re.findall(r"`([^`]*cosep-deploy [^`]*--[^`]*)`", line)
            for snippet in snippets:
                m = _INVOCATION.search(snippet.split(" # ")[0].split("  #")[0])
                if m and m.group(1).strip():
                    found.append((f"{doc.relative_to(REPO)}:{number}", m.group(1).strip()))
    return found


COMMAND_LINES = _command_lines()


def _parse(argument_string: str) -> click.Context:
    """What click makes of a command line, without invoking anything (the group's options included)."""
    args = shlex.split(argument_string)
    ctx = cli.make_context("cosep-deploy", list(args), resilient_parsing=False)
    with warnings.catch_warnings():  # click 8.2+ deprecates protected_args; 9.0 folds it into args
        warnings.simplefilter("ignore", DeprecationWarning)
        remaining = [*ctx.protected_args, *ctx.args]
    name, command, rest = cli.resolve_command(ctx, remaining)
    assert command is not None, f"unknown command {name!r}"
    return command.make_context(name or "", rest, parent=ctx)


def test_the_documentation_shows_commands() -> None:
    assert len(COMMAND_LINES) >= 15  # the parser of the docs must find the README's tour


@pytest.mark.parametrize(("where", "line"), COMMAND_LINES, ids=[w for w, _ in COMMAND_LINES])
def test_documented_command_line_is_accepted(
    where: str, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # files the line names exist (empty), as they would for a user: click checks existence while parsing
    monkeypatch.chdir(tmp_path)
    for word in shlex.split(line):
        if Path(word).suffix in (".onnx", ".engine", ".plan", ".toml", ".json", ".safetensors", ".pt"):
            Path(word).parent.mkdir(parents=True, exist_ok=True)
            Path(word).touch()
    if "..." in line or "<" in line or any(re.fullmatch(r"[A-Z][A-Z_]*", word) for word in shlex.split(line)):
        pytest.skip(f"{where}: has a placeholder (N, FILE, <...>), not a literal command line")
    try:
        _parse(line)
    except click.exceptions.Exit:
        pass  # --help and --version end parsing successfully
    except click.UsageError as exc:
        pytest.fail(f"{where}: `cosep-deploy {line}` is refused by the CLI: {exc.format_message()}")


def test_a_wrong_option_is_caught_by_the_parse() -> None:
    with pytest.raises(click.UsageError, match="no-such-option"):
        _parse("bench --run runs/r1 --no-such-option 3")


def test_quick_documented_commands_run_for_real() -> None:
    runner = CliRunner()
    targets = runner.invoke(cli, ["targets", "--json"])
    assert targets.exit_code == 0, targets.output
    assert "cpu-onnxruntime" in {t["name"] for t in json.loads(targets.output)}
    doctor = runner.invoke(cli, ["doctor"])
    assert doctor.exit_code == 0, doctor.output
    assert "onnxruntime" in doctor.output.lower()
