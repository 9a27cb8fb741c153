"""Artifact plumbing shared by every stage: atomic writes, hashes, provenance, JSON dataclasses.

Every stage writes plain, versioned files. Writes go to a temporary sibling and are renamed into place,
so a crash never leaves a half-written artifact; a directory artifact is staged whole and renamed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from cosep_deploy._version import __version__
from cosep_deploy.errors import ArtifactError, ConfigError
from cosep_deploy.verbosity import get_logger

__all__ = [
    "JsonArtifact",
    "atomic_write_bytes",
    "atomic_write_text",
    "ensure_writable_dir",
    "provenance",
    "read_json",
    "sha256_bytes",
    "sha256_file",
    "staged_dir",
    "write_json",
]

T = TypeVar("T", bound="JsonArtifact")
log = get_logger(__name__)


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory, then rename.

    The file gets the permissions a plain ``open()`` would give it (0666 less the umask), not the
    owner-only 0600 of the temporary file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # the name is chosen before the file exists, so an interrupt anywhere after (even inside the open)
    # leaves nothing behind: mkstemp returns the name only once the file is there
    tmp = target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        log.info("wrote %s (%d bytes)", target, len(data))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | os.PathLike[str], *, what: str = "JSON file") -> Any:
    p = Path(path)
    if not p.is_file():
        raise ArtifactError(f"{what} not found: {p}")
    log.debug("reading %s %s", what, p)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{what} {p} is not valid JSON ({exc}); re-run the stage that wrote it") from exc


def _json_default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@contextlib.contextmanager
def staged_dir(final: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``final``; on success it replaces ``final`` atomically.

    On any exception the staging directory is removed and ``final`` is left as it was.
    """
    target = Path(final)
    ensure_writable_dir(target.parent)
    if target.exists() and not overwrite:
        raise ConfigError(f"output {target} already exists; choose another path or pass --overwrite")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    try:
        tmp.chmod(0o777 & ~_umask())  # as mkdir would make it, not mkdtemp's owner-only 0700
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def ensure_writable_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` if needed and check it is a writable directory, with a clear error if not."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output directory {p}: {exc.strerror or exc}") from exc
    if not p.is_dir():
        raise ConfigError(f"output path {p} exists and is not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(f"output directory {p} is not writable; choose another --out")
    return p


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def provenance(**inputs: Any) -> dict[str, Any]:
    """Package and library versions plus the caller's input hashes, recorded in every artifact."""
    from importlib import metadata

    libs: dict[str, str] = {}
    for dist in ("torch", "torchvision", "torch-pruning", "onnx", "onnxruntime", "numpy"):
        try:
            libs[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cosep_deploy": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": libs,
        "inputs": inputs,
    }


@dataclasses.dataclass(frozen=True, kw_only=True)
class JsonArtifact:
    """Base for schema-versioned JSON artifacts: subclasses set ``SCHEMA`` and ``SCHEMA_VERSION``."""

    # Subclasses set the plain class attributes ``_schema`` (name) and ``_schema_version`` (int).

    def to_json(self) -> dict[str, Any]:
        body = dataclasses.asdict(self)
        return {"schema": type(self).schema_name(), "schema_version": type(self).schema_version(), **body}

    @classmethod
    def schema_name(cls) -> str:
        return str(getattr(cls, "_schema", cls.__name__))

    @classmethod
    def schema_version(cls) -> int:
        return int(getattr(cls, "_schema_version", 1))

    @classmethod
    def from_json(cls: type[T], data: dict[str, Any]) -> T:
        name, version = data.get("schema"), data.get("schema_version")
        if name != cls.schema_name():
            raise ArtifactError(f"expected a {cls.schema_name()} artifact, found schema {name!r}")
        if version != cls.schema_version():
            raise ArtifactError(
                f"{cls.schema_name()} schema version {version} is not supported (this cosep-deploy reads "
                f"version {cls.schema_version()}); re-run the stage that wrote it"
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_json(path, self.to_json())

    @classmethod
    def load(cls: type[T], path: str | os.PathLike[str]) -> T:
        data = read_json(path, what=f"{cls.schema_name()} file")
        if not isinstance(data, dict):
            raise ArtifactError(f"{path} does not hold a {cls.schema_name()} object")
        return cls.from_json(data)
