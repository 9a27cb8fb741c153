"""Atomic files and staged directories: whole or nothing, with ordinary permissions."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cosep_deploy.artifacts import atomic_write_bytes, read_json, staged_dir, write_json
from cosep_deploy.errors import ConfigError, CosepError


@pytest.fixture
def umask_027() -> Iterator[int]:
    old = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(old)


def test_atomic_write_replaces_and_follows_the_umask(tmp_path: Path, umask_027: int) -> None:
    target = tmp_path / "sub" / "a.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask_027  # 0640, not mkstemp's 0600
    assert [p.name for p in target.parent.iterdir()] == ["a.bin"]  # no temporary file left


def test_atomic_write_failure_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})
    with pytest.raises(TypeError):
        write_json(target, {"v": object()})  # fails before anything is written
    assert read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_staged_dir_is_whole_or_nothing(tmp_path: Path, umask_027: int) -> None:
    final = tmp_path / "run"
    with staged_dir(final) as tmp:
        (tmp / "x.txt").write_text("x")
    assert (final / "x.txt").read_text() == "x"
    assert stat.S_IMODE(final.stat().st_mode) == 0o777 & ~umask_027
    with pytest.raises(ConfigError, match="already exists"), staged_dir(final):
        pass
    with pytest.raises(RuntimeError), staged_dir(final, overwrite=True) as tmp:
        (tmp / "y.txt").write_text("y")
        raise RuntimeError("stage failed")
    assert sorted(p.name for p in final.iterdir()) == ["x.txt"]  # the old artifact is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # and no staging directory is left


def test_read_json_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CosepError, match="not found"):
        read_json(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{truncated")
    with pytest.raises(CosepError, match=r"bad\.json is not valid JSON"):
        read_json(bad)
