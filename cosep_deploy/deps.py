"""Lazy import of optional heavy dependencies with an actionable install hint."""

from __future__ import annotations

import importlib
from types import ModuleType

from cosep_deploy.errors import MissingDependencyError

__all__ = ["INSTALL_HINTS", "is_available", "require"]

# module -> how to get it (a pip extra of this package, or JetPack on a Jetson board)
INSTALL_HINTS: dict[str, str] = {
    "tensorrt": "pip install 'cosep-deploy[tensorrt]' (on Jetson: TensorRT comes with JetPack, "
    "apt install python3-libnvinfer)",
    "torch_tensorrt": "pip install 'cosep-deploy[torch-tensorrt]' (each torch-tensorrt release pins one torch "
    "release and needs a CUDA build of it; on Jetson: the torch-tensorrt wheel built for your JetPack)",
    "cuda": "pip install 'cosep-deploy[cuda12]' (cuda-python for CUDA 12: JetPack 6 and most desktops; "
    "[cuda11] or [cuda13] for those CUDA majors)",
    "pycuda": "pip install pycuda (common on Jetson boards)",
    "modelopt": "pip install 'cosep-deploy[modelopt]'",
}


def require(module: str, *, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming how to install it.

    A namespace package with no code (what type-stub wheels such as ``tensorrt-stubs`` leave behind:
    a ``tensorrt/`` folder holding only ``.pyi`` files) counts as missing.
    """
    top = module.split(".")[0]
    hint = INSTALL_HINTS.get(top, f"pip install {top}")
    what = f" (needed for {purpose})" if purpose else ""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"optional dependency {module!r} is not importable{what}: {exc}. Install it with: {hint}"
        ) from exc
    if getattr(mod, "__file__", None) is None and not hasattr(mod, "__version__"):
        raise MissingDependencyError(
            f"optional dependency {module!r} is not installed{what} (only type stubs were found). "
            f"Install it with: {hint}"
        )
    return mod


def is_available(module: str) -> bool:
    """True if :func:`require` would succeed."""
    try:
        require(module)
    except MissingDependencyError:
        return False
    return True
