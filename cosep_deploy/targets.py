"""Device target profiles by name: the shipped ones, the user's, and those given on the command line.

A target is a small declarative record (:class:`~cosep_deploy.target_profile.TargetProfile`) read from one TOML
file (:func:`~cosep_deploy.target_files.load_target`). The shipped profiles are package data
(``cosep_deploy/target_profiles/jetson-agx-orin.toml`` ...). Users add their own as TOML files of the
same shape: in folders named by ``$COSEP_DEPLOY_TARGETS`` (separated like ``PATH``), with
``--target-file FILE`` on the command line (:func:`register_target_file`), or by passing a file's path
wherever a target name is taken.
"""

from __future__ import annotations

import os
from pathlib import Path

from cosep_deploy.env import TARGETS_ENV_VAR, user_target_dirs
from cosep_deploy.errors import ConfigError, unknown_name
from cosep_deploy.target_files import load_target
from cosep_deploy.target_profile import TargetProfile

__all__ = ["TARGETS_DIR", "get_target", "list_targets", "register_target_file"]

# The shipped profiles are package data, so an installed wheel has them too.
TARGETS_DIR = Path(__file__).resolve().parent / "target_profiles"


_registered: list[Path] = []  # --target-file: profiles added for this process


def register_target_file(path: str | os.PathLike[str]) -> TargetProfile:
    """Make the profile in ``path`` known by its name for the rest of this process (``--target-file``)."""
    profile = load_target(path)
    _registered.append(Path(path))
    _profile_files()  # a name clash with another profile is refused now, not at first use
    return profile


def _profile_files(directory: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Name -> TOML file: one folder if given; else the shipped profiles, the user's folders and registered
    files. A name defined twice is refused (naming both files) rather than silently shadowed."""
    if directory is not None:
        folder = Path(directory)
        if not folder.is_dir():
            raise ConfigError(f"target folder {folder} does not exist (expected one TOML file per target)")
        return {p.stem: p for p in sorted(folder.glob("*.toml"))}
    files: dict[str, Path] = {}
    candidates = [*sorted(TARGETS_DIR.glob("*.toml"))]
    for folder in user_target_dirs():
        if not folder.is_dir():
            raise ConfigError(
                f"{TARGETS_ENV_VAR} names {folder}, which is not a folder (expected one TOML file per target)"
            )
        candidates += sorted(folder.glob("*.toml"))
    candidates += _registered
    for path in candidates:
        name = load_target(path).name if path in _registered else path.stem
        if name in files and files[name].resolve() != path.resolve():
            raise ConfigError(f"target {name!r} is defined twice: {files[name]} and {path}; rename one of them")
        files[name] = path
    return files


def list_targets(directory: str | os.PathLike[str] | None = None) -> list[TargetProfile]:
    """Every profile in ``directory`` (default: shipped, ``$COSEP_DEPLOY_TARGETS`` and registered), by name."""
    found = _profile_files(directory)
    return [_load_named(found[name], check_stem=found[name] not in _registered) for name in sorted(found)]


def get_target(name_or_path: str | os.PathLike[str]) -> TargetProfile:
    """A target by name (``"jetson-agx-orin"``) or a user's profile by TOML file path."""
    text = os.fspath(name_or_path)
    if text.endswith(".toml") or os.sep in text or Path(text).is_file():
        return load_target(text)
    found = _profile_files()
    if text in found:
        return _load_named(found[text], check_stem=found[text] not in _registered)
    raise ConfigError(
        unknown_name("target", text, found)
        + f" (or pass the path of your own target TOML file, --target-file FILE, or a folder in {TARGETS_ENV_VAR})"
    )


def _load_named(path: Path, *, check_stem: bool = True) -> TargetProfile:
    # in a folder of profiles the file name is the lookup key, so it must agree with the name inside
    profile = load_target(path)
    if check_stem and profile.name != path.stem:
        raise ConfigError(f"{path}: field 'name': {profile.name!r} must equal the file name {path.stem!r}")
    return profile
