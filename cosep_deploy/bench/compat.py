"""Refuse to put side by side two saved benchmark results taken under different conditions.

Within one run the harness already refuses engines set up differently. Results saved at different times
(repeats, alignment candidates, a rerun on another day) can only be compared if they came from the same
kind of machine and software: same CPU model and usable cores, same runtime settings and library versions,
same GPU clocks and power limit, same Jetson power mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cosep_deploy.errors import BenchError

__all__ = ["check_reports_comparable", "comparison_key"]

_LIBRARIES = ("onnxruntime", "onnxruntime-gpu", "tensorrt", "torch", "torch-tensorrt")
_GPU_KEYS = ("name", "driver_version", "clocks_max_sm_mhz", "clocks_max_mem_mhz", "power_limit_w")


def comparison_key(report: Mapping[str, Any]) -> dict[str, Any]:
    """What must match between two saved bench results (a BenchReport's JSON) for them to be compared."""
    env = report.get("environment", {})
    libraries = env.get("libraries", {})
    jetson = env.get("jetson") if isinstance(env.get("jetson"), Mapping) else None
    power = (jetson or {}).get("power") or {}
    return {
        "settings": dict(report.get("settings", {})),
        "mode": report.get("mode", "latency"),
        "input_shape": list(report.get("input_shape", [])),
        "cpu_model": env.get("cpu_model"),
        "cpus_usable": env.get("cpus_usable"),
        "libraries": {k: libraries.get(k) for k in _LIBRARIES},
        "gpus": [{k: g.get(k) for k in _GPU_KEYS} for g in env.get("gpus", [])],
        "jetson_power_mode": power.get("nvpmodel_mode"),
        # parsed frequencies (GPU, EMC, slowest CPU, locked), not jetson_clocks' text: the text carries
        # governor and idle-state details that differ between runs at identical clocks
        "jetson_clocks": power.get("clocks_key"),
    }


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        return out
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def check_reports_comparable(reports: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise BenchError naming the differences if any two of ``reports`` (label -> BenchReport JSON) were taken
    under conditions that make their speed-ups incomparable."""
    labels = list(reports)
    if len(labels) < 2:
        return
    ref = comparison_key(reports[labels[0]])
    for label in labels[1:]:
        diff = _differences(ref, comparison_key(reports[label]))
        if diff:
            raise BenchError(
                f"bench results {labels[0]!r} and {label!r} were taken under different conditions "
                f"({'; '.join(diff[:4])}{'; ...' if len(diff) > 4 else ''}): they cannot be compared"
            )
