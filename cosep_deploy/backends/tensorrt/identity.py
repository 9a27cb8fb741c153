"""Which device an engine belongs to: more than "name (compute capability)".

Every Orin module reports the CUDA name "Orin" and compute capability 8.7, so those two alone would hand an
AGX Orin engine (tactics tuned for 16 SMs at MAXN) to an Orin Nano. :class:`DeviceIdentity` adds what tells
them apart and what changes an engine's tactics: the SM count and total memory (from the CUDA runtime), the
board's model string and power mode (Jetson only, read with :mod:`cosep_deploy.board.jetson`), and the
TensorRT package version (a rebuilt package of the same release can change tactics). It goes into the engine
cache key and the manifest, and the runner refuses an engine whose recorded identity differs from the
device it is loaded on.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from cosep_deploy.backends.tensorrt.cuda import DeviceInfo

__all__ = ["DeviceIdentity", "board_identity", "device_identity", "tensorrt_package_version"]

# pip distributions that install the ``tensorrt`` module (the plain name, then the per-CUDA wheels)
_TRT_DISTRIBUTIONS = ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11")
# JetPack's Debian packages of TensorRT's Python bindings
_TRT_DEBIANS = ("python3-libnvinfer",)


@dataclasses.dataclass(frozen=True)
class DeviceIdentity:
    """A GPU as an engine cache key and a manifest see it. Empty strings and None mean "not readable here"
    (a desktop GPU has no board model or power mode)."""

    name: str
    compute_capability: str
    sm_count: int | None
    memory_bytes: int | None
    board_model: str
    power_mode: str  # "MAXN (0)" as nvpmodel reports it; "" off Jetson or when nvpmodel cannot run
    tensorrt_package_version: str

    def cache_label(self) -> str:
        """The device part of an engine cache key: everything but the TensorRT version (keyed separately)."""
        parts = [self.name, f"sm {self.compute_capability}", f"{self.sm_count} SMs", f"{self.memory_bytes} B"]
        return " / ".join([*parts, self.board_model, self.power_mode, self.tensorrt_package_version])

    def manifest_fields(self) -> dict[str, Any]:
        """The :class:`~cosep_deploy.engines.manifest.EngineManifest` fields this identity fills."""
        return {
            "device_name": self.name,
            "compute_capability": self.compute_capability,
            "device_sm_count": self.sm_count,
            "device_memory_bytes": self.memory_bytes,
            "board_model": self.board_model,
            "power_mode": self.power_mode,
            "tensorrt_package_version": self.tensorrt_package_version,
        }


def tensorrt_package_version(module_version: str) -> str:
    """The installed TensorRT package's version: the pip distribution's, else JetPack's Debian package's
    (``10.3.0.30-1+cuda12.5``), else the module's ``__version__``."""
    for dist in _TRT_DISTRIBUTIONS:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    dpkg = shutil.which("dpkg-query")
    if dpkg is not None:
        for package in _TRT_DEBIANS:
            try:
                proc = subprocess.run(
                    [dpkg, "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=10, check=False
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            if proc.returncode == 0 and proc.stdout.strip():
                return proc.stdout.strip()
    return module_version


def board_identity(board_root: str | Path = Path("/"), tools_path: str | None = None) -> tuple[str, str]:
    """(board model, power mode) of the Jetson under ``board_root``; ("", "") off Jetson. The power mode is
    ``nvpmodel -q``'s mode name and id ("MAXN (0)"), "" when nvpmodel cannot run."""
    from cosep_deploy.board.jetson import detect_jetson, power_state

    board = detect_jetson(board_root)
    if board is None:
        return "", ""
    power = power_state(path=tools_path)
    mode = ""
    if power.nvpmodel_mode is not None:
        mode = power.nvpmodel_mode + (f" ({power.nvpmodel_id})" if power.nvpmodel_id is not None else "")
    return board.model or "", mode


def device_identity(
    device: DeviceInfo, trt_version: str, *, board_root: str | Path = Path("/"), tools_path: str | None = None
) -> DeviceIdentity:
    """The identity of ``device`` (from :func:`~cosep_deploy.backends.tensorrt.cuda.device_info`) on this
    machine, with TensorRT ``trt_version``."""
    model, mode = board_identity(board_root, tools_path)
    return DeviceIdentity(
        name=device.name,
        compute_capability=device.compute_capability,
        sm_count=device.sm_count,
        memory_bytes=device.memory_bytes,
        board_model=model,
        power_mode=mode,
        tensorrt_package_version=tensorrt_package_version(trt_version),
    )
