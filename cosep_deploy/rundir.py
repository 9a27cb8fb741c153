"""Run-directory ownership and locking: the tool writes only into directories it made, one writer at a time.

- **Marker.** A run directory holds ``.cosep-deploy-run`` (JSON). A command writes into a directory only if
  it does not exist, is empty, or holds the marker (or a ``run.json`` of ours, from before the marker):
  ``--out .`` in a folder of other files is refused and nothing in it changes.
- **Lock.** ``.cosep-deploy.lock`` names the process that writes (pid, host, command, start time). A second
  writer is refused with that name; a lock whose process is gone (killed) is detected and cleared.
  Re-entrant within a process (``run_pipeline`` calls the stage functions, which lock too).
- **Stale staging.** Staging directories and temporary files a killed process left (``.NAME.*.staging``,
  ``.NAME.old``, ``.NAME.*.tmp``) are removed once the lock is held: no live writer can own them then.
- **Nothing left behind.** A directory this session created is removed again if the command failed before
  writing anything but the marker.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from cosep_deploy.errors import RunDirError, RunLockedError, StorageError
from cosep_deploy.verbosity import get_logger

__all__ = [
    "LOCK_FILE",
    "MARKER_FILE",
    "clean_stale_staging",
    "is_run_dir",
    "run_session",
    "writes_run",
]

MARKER_FILE = ".cosep-deploy-run"
LOCK_FILE = ".cosep-deploy.lock"
_HELD: dict[Path, int] = {}  # run directories this process holds, with a re-entry count
_BOOKKEEPING = {MARKER_FILE, LOCK_FILE}
_STAGE_DIRS = ("dense", "pruned", "finetuned", "onnx", "engines", "bench", "stages")

# what artifacts.staged_dir and atomic_write_bytes leave when killed (tempfile's 8 random characters)
_STAGING = re.compile(r"^\..+\.[a-z0-9_]{8}\.staging$")
_TMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
_OLD = re.compile(r"^\.[^.].*\.old$")

P = ParamSpec("P")
R = TypeVar("R")
log = get_logger(__name__)


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """A directory with the marker, or one an older cosep-deploy made (its ``run.json`` is ours)."""
    p = Path(path)
    if (p / MARKER_FILE).is_file():
        return True
    try:
        raw = json.loads((p / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and raw.get("schema") == "RunSpec"


def _check_owned(root: Path, *, create: bool) -> bool:
    """Refuse a directory that is not ours; return True if it does not exist yet (this session makes it)."""
    if not root.exists():
        if not create:
            raise RunDirError(
                f"run directory {root} does not exist: check --run, or create it with `cosep-deploy train`"
            )
        return True
    if not root.is_dir():
        raise RunDirError(f"{root} exists and is not a directory; choose another --out")
    if is_run_dir(root):
        return False
    entries = [e.name for e in root.iterdir()]
    if not entries:
        return False
    shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
    raise RunDirError(
        f"{root} is not a cosep-deploy run directory (no {MARKER_FILE}) and is not empty ({shown}); "
        "nothing was changed: choose a new or empty directory"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _describe(holder: dict[str, Any]) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, int | float) else "?"
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} ({holder.get('command', '?')}, since {when})"


def _acquire(root: Path, command: str) -> None:
    lock = root / LOCK_FILE
    body = json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "started": time.time()}
    ).encode()
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read_lock(lock)
            if holder is None:
                continue  # released between our two looks
            same_host = holder.get("host") == socket.gethostname()
            pid = holder.get("pid")
            if holder == {} or (same_host and isinstance(pid, int) and not _alive(pid)):
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()  # a killed process's lock (or a torn one): clear it and try again
                continue
            raise RunLockedError(
                f"run directory {root} is in use by {_describe(holder)}; wait for it to finish "
                f"(or, if that process is gone, delete {lock})"
            ) from None
        except OSError as exc:
            raise StorageError(f"cannot write in run directory {root}: {exc.strerror or exc}") from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
        except BaseException:  # Ctrl-C or a full disk while writing it: leave no torn lock behind
            with contextlib.suppress(OSError):
                lock.unlink()
            raise
        return
    raise RunLockedError(f"cannot take the lock {lock}: it keeps reappearing; is another command starting?")


def clean_stale_staging(root: Path) -> list[Path]:
    """Remove staging directories, ``.old`` swaps and temporary files a killed writer left; return them."""
    removed: list[Path] = []
    folders = [root, *(root / d for d in _STAGE_DIRS)]
    engines = root / "engines"
    if engines.is_dir():
        folders += [p for p in engines.iterdir() if p.is_dir()]
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            name = entry.name
            if not name.startswith(".") or name in _BOOKKEEPING:
                continue
            stale_dir = entry.is_dir() and bool(_STAGING.match(name) or _OLD.match(name))
            stale_file = entry.is_file() and bool(_TMP.match(name))
            if stale_dir:
                shutil.rmtree(entry, ignore_errors=True)
            elif stale_file:
                entry.unlink(missing_ok=True)
            if stale_dir or stale_file:
                removed.append(entry)
    return removed


def _command_line() -> str:
    return " ".join(["cosep-deploy", *sys.argv[1:]])[:200] if sys.argv else "cosep-deploy"


@contextlib.contextmanager
def run_session(run: str | os.PathLike[str], *, create: bool = False, command: str | None = None) -> Iterator[Path]:
    """Own and lock ``run`` while the body writes into it (see the module docstring)."""
    from cosep_deploy.env import global_rank, launched_by_torchrun

    root = Path(run).absolute()
    if launched_by_torchrun() and global_rank() != 0:
        yield root  # rank 0 owns and locks the run directory for every process of the job
        return
    if root in _HELD:
        _HELD[root] += 1
        try:
            yield root
        finally:
            _HELD[root] -= 1
        return
    made = _check_owned(root, create=create)
    if made:
        try:
            root.mkdir(parents=True)
        except OSError as exc:
            raise RunDirError(f"cannot create output directory {root}: {exc.strerror or exc}") from exc
    if not os.access(root, os.W_OK | os.X_OK):
        raise StorageError(f"run directory {root} is not writable; choose another --out or fix its permissions")
    ok = False
    try:  # _acquire inside: a Ctrl-C landing just after it took the lock still releases it below
        _acquire(root, command or _command_line())
        _HELD[root] = 1
        log.info("locked %s (process %d)", root, os.getpid())
        if not (root / MARKER_FILE).is_file():
            _write_marker(root)
        clean_stale_staging(root)
        yield root
        ok = True
    finally:
        _HELD.pop(root, None)
        _release(root)
        if made and not ok:
            _remove_if_only_bookkeeping(root)


def _release(root: Path) -> None:
    """Remove the lock if this process holds it (not another's: _acquire may have refused theirs)."""
    lock = root / LOCK_FILE
    holder = _read_lock(lock)
    if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        with contextlib.suppress(OSError):
            lock.unlink()


def _write_marker(root: Path) -> None:
    from cosep_deploy.artifacts import write_json

    write_json(root / MARKER_FILE, {"schema": "CosepDeployRun", "schema_version": 1, "created": time.time()})


def _remove_if_only_bookkeeping(root: Path) -> None:
    with contextlib.suppress(OSError):
        if {e.name for e in root.iterdir()} <= _BOOKKEEPING:
            shutil.rmtree(root)


def writes_run(*, create: bool = False) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: the function's first argument is a run directory, owned and locked while it runs."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            run = args[0] if args else kwargs.get("run", kwargs.get("out"))
            if not isinstance(run, str | os.PathLike):
                raise TypeError(f"{fn.__name__}: the first argument must be the run directory")
            with run_session(run, create=create):
                return fn(*args, **kwargs)

        return wrapper

    return decorate
