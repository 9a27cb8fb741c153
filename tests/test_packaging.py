"""A wheel built from the repository works when installed elsewhere: its data files (target profiles,
schemas) are package data, and commands run from a folder outside the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import cosep_deploy

REPO = Path(cosep_deploy.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed (without dependencies: the test environment has them) into an empty folder."""
    if not (REPO / "setup.cfg").is_file():
        pytest.skip("not a source checkout")
    work = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(work / "dist"), str(REPO)],
        check=True,
        capture_output=True,
        cwd=work,
    )
    (wheel,) = (work / "dist").glob("cosep_deploy-*.whl")
    site = work / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    return site


def _run(site: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # only the installed copy is importable as cosep_deploy: the repository is neither the cwd nor on the path
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COSEP_DEPLOY_TARGETS")}
    full = {**base, "PYTHONPATH": str(site), **(env or {})}
    return subprocess.run(
        [sys.executable, "-P", "-m", "cosep_deploy", *args], capture_output=True, text=True, cwd=cwd, env=full
    )


def test_the_wheel_carries_every_data_file(installed: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "cosep_deploy"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout: cannot tell the package's files from local caches")
    # every file the package reads at run time; ruff.toml only configures linting of the on-board code
    data = {p for p in tracked if not p.endswith((".py", "ruff.toml"))}
    assert data >= {"cosep_deploy/py.typed", "cosep_deploy/bench/bench.schema.json"}
    missing = [p for p in sorted(data) if not (installed / p).is_file()]
    assert missing == []


def test_installed_package_lists_targets_from_outside_the_repository(installed: Path, tmp_path: Path) -> None:
    done = _run(installed, "targets", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = {t["name"] for t in json.loads(done.stdout)}
    shipped = {p.stem for p in (REPO / "cosep_deploy" / "target_profiles").glob("*.toml")}
    assert names == shipped and "jetson-agx-orin" in names
    where = _run(installed, "--version", cwd=tmp_path)
    assert where.returncode == 0 and cosep_deploy.__version__ in where.stdout


def test_installed_package_runs_a_command_with_a_users_own_target(installed: Path, tmp_path: Path) -> None:
    own = tmp_path / "profiles"
    own.mkdir()
    text = (REPO / "cosep_deploy" / "target_profiles" / "cpu-onnxruntime.toml").read_text()
    (own / "my-cpu.toml").write_text(text.replace('name = "cpu-onnxruntime"', 'name = "my-cpu"'))
    done = _run(installed, "targets", "--json", cwd=tmp_path, env={"COSEP_DEPLOY_TARGETS": str(own)})
    assert done.returncode == 0, done.stderr
    assert "my-cpu" in {t["name"] for t in json.loads(done.stdout)}
    # the same profile given with --target-file, used by name by a command that reads targets
    (own / "my-cpu.toml").rename(tmp_path / "elsewhere.toml")
    done = _run(installed, "--target-file", str(tmp_path / "elsewhere.toml"), "targets", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "my-cpu" in {t["name"] for t in json.loads(done.stdout)}


def test_wheel_has_no_tests_or_repository_files(installed: Path) -> None:
    top = {p.name for p in installed.iterdir() if not p.name.endswith(".dist-info")}
    assert top == {"cosep_deploy", "bin"}  # bin: the console script
    wheel_files = [n for n in zipfile.ZipFile(next((installed.parent / "dist").glob("*.whl"))).namelist()]
    assert not [n for n in wheel_files if n.startswith(("tests/", "bench/", "engines/"))]
