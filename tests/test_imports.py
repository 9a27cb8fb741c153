"""Every module imports with only the core installed, and no optional backend is imported eagerly."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

import cosep_deploy
from cosep_deploy.cli.main import cli

OPTIONAL = ("tensorrt", "torch_tensorrt", "pycuda", "cuda", "modelopt")


def _all_modules() -> list[str]:
    return [
        m.name
        for m in pkgutil.walk_packages(cosep_deploy.__path__, "cosep_deploy.")
        if m.name != "cosep_deploy.__main__"
    ]


@pytest.mark.parametrize("name", _all_modules())
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_import_and_help_do_not_load_optional_backends() -> None:
    code = (
        "import sys, cosep_deploy, cosep_deploy.cli.main as m\n"
        "from click.testing import CliRunner\n"
        "r = CliRunner().invoke(m.cli, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        f"bad = [k for k in sys.modules if k.split('.')[0] in {OPTIONAL!r}]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"optional backends imported eagerly: {out.stdout}"


def test_every_command_has_help() -> None:
    runner = CliRunner()
    assert set(cli.commands) >= {
        "train",
        "prune",
        "finetune",
        "export",
        "build",
        "bench",
        "report",
        "pipeline",
        "targets",
        "doctor",
    }
    for name in cli.commands:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert cosep_deploy.__version__ in result.output
