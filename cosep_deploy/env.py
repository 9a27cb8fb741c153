"""The one module that reads environment variables, each behind a function named for what it gives.

Importing it is cheap (standard library only), so the CLI can consult it before torch is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "CACHE_ENV_VAR",
    "TARGETS_ENV_VAR",
    "engine_cache_root",
    "global_rank",
    "launched_by_torchrun",
    "local_rank",
    "user_target_dirs",
]

CACHE_ENV_VAR = "COSEP_DEPLOY_CACHE"
TARGETS_ENV_VAR = "COSEP_DEPLOY_TARGETS"


def engine_cache_root() -> Path:
    """``$COSEP_DEPLOY_CACHE``; else ``$XDG_CACHE_HOME/cosep-deploy/engines``; else
    ``~/.cache/cosep-deploy/engines``."""
    configured = os.environ.get(CACHE_ENV_VAR, "").strip()
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    # the XDG spec: a relative path in the variable is invalid and must be ignored
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "cosep-deploy" / "engines"


def user_target_dirs() -> list[Path]:
    """Folders of the user's own target profiles: ``$COSEP_DEPLOY_TARGETS``, separated like ``PATH``."""
    raw = os.environ.get(TARGETS_ENV_VAR, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher) set WORLD_SIZE > 1 for this process."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def local_rank() -> int:
    """This process's GPU index on its node under torchrun (0 otherwise)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def global_rank() -> int:
    """This process's rank among all torchrun processes (0 when not launched by torchrun)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0
