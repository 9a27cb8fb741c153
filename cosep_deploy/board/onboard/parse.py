"""Readers of what the board's tools print: trtexec's banner, log and --exportTimes, ``nvpmodel -q``,
``/etc/nvpmodel.conf``, ``jetson_clocks --show`` and tegrastats lines. Standard library, Python 3.8."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "clocks_key",
    "parse_export_compute_ms",
    "parse_jetson_clocks",
    "parse_nvpmodel_conf",
    "parse_nvpmodel_query",
    "parse_tegrastats_line",
    "parse_trtexec_log",
    "parse_trtexec_version",
]

_BANNER = re.compile(r"\[TensorRT v(\d+)\]")


def parse_trtexec_version(text: str) -> tuple[int, int, int] | None:
    """``[TensorRT v100300]`` -> (10, 3, 0); 8.x packs it as ``v8601`` (MAJOR*1000 + MINOR*100 + PATCH)."""
    m = _BANNER.search(text)
    if not m:
        m2 = re.search(r"TensorRT version:\s*(\d+)\.(\d+)\.(\d+)", text)
        return (int(m2.group(1)), int(m2.group(2)), int(m2.group(3))) if m2 else None
    n = int(m.group(1))
    if n < 10000:
        return (n // 1000, (n // 100) % 10, n % 100)
    return (n // 10000, (n // 100) % 100, n % 100)


_LOG_FIELDS = {
    "device_name": r"Selected Device:\s*(.+?)\s*$",
    "compute_capability": r"Compute Capability:\s*([0-9]+\.[0-9]+)",
    "sm_count": r"\bSMs:\s*([0-9]+)",
    "total_memory_mib": r"Device Global Memory:\s*([0-9]+) MiB",
    "build_seconds": r"Engine built in ([0-9.]+) sec",
    "throughput_qps": r"Throughput:\s*([0-9.eE+-]+) qps",
    "gpu_compute_median_ms": r"GPU Compute Time:.*?median = ([0-9.eE+-]+) ms",
}


def parse_trtexec_log(text: str) -> dict[str, Any]:
    """Device and run facts from a trtexec log; keys whose line is absent are left out."""
    out: dict[str, Any] = {}
    for key, pattern in _LOG_FIELDS.items():
        m = re.search(pattern, text, re.M)
        if m:
            raw = m.group(1).strip()
            out[key] = int(raw) if key in ("sm_count", "total_memory_mib") else raw
    for key in ("build_seconds", "throughput_qps", "gpu_compute_median_ms"):
        if key in out:
            out[key] = float(out[key])
    version = parse_trtexec_version(text)
    if version:
        out["tensorrt_version"] = "%d.%d.%d" % version
    if "&&&& FAILED" in text:
        out["failed"] = True
    return out


def parse_export_compute_ms(path: str) -> list[float]:
    """GPU compute time per iteration from ``--exportTimes`` (``computeMs``, or the end minus the start)."""
    with open(path) as fh:
        rows = json.load(fh)
    if not isinstance(rows, list) or not rows:
        raise ValueError("%s is not a trtexec --exportTimes file (expected a non-empty list)" % path)
    out = []
    for row in rows:
        if "computeMs" in row:
            out.append(float(row["computeMs"]))
        elif "startComputeMs" in row and "endComputeMs" in row:
            out.append(float(row["endComputeMs"]) - float(row["startComputeMs"]))
    if not out:
        raise ValueError("%s: no GPU compute times in any iteration" % path)
    return out


def parse_nvpmodel_query(text: str) -> tuple[str | None, int | None]:
    """``nvpmodel -q``: ``NV Power Mode: MAXN`` and, on the next line, the mode id."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        m = re.match(r"NV Power Mode:\s*(.+)$", line)
        if m:
            ident = int(lines[i + 1]) if i + 1 < len(lines) and lines[i + 1].isdigit() else None
            return m.group(1).strip(), ident
    return None, None


def parse_nvpmodel_conf(text: str) -> dict[str, int]:
    """Mode name -> id from ``/etc/nvpmodel.conf`` lines such as ``< POWER_MODEL ID=0 NAME=MAXN >``."""
    out: dict[str, int] = {}
    for m in re.finditer(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)", text):
        out[m.group(2)] = int(m.group(1))
    return out


def parse_jetson_clocks(text: str) -> dict[str, dict[str, float]]:
    """``jetson_clocks --show`` as MHz per clock: {"GPU": {"min":, "max":, "current":}, "EMC": ..., "cpu0": ...}.

    CPU lines give kHz (``cpu0: Online=1 ... MinFreq=729600 MaxFreq=2201600 CurrentFreq=2201600``), GPU, EMC
    and DLA lines give Hz (``GPU MinFreq=306000000 MaxFreq=1300500000 CurrentFreq=1300500000``). Offline
    CPUs print no frequencies and are left out.
    """
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([A-Za-z][A-Za-z0-9_]*):?\s.*?MinFreq=(\d+)\s+MaxFreq=(\d+)\s+CurrentFreq=(\d+)", line)
        if not m:
            continue
        name = m.group(1)
        scale = 1e3 if name.lower().startswith("cpu") else 1e6
        out[name] = {k: int(m.group(i)) / scale for k, i in (("min", 2), ("max", 3), ("current", 4))}
    return out


def clocks_key(clocks: dict[str, dict[str, float]]) -> dict[str, Any]:
    """What must match between two runs: GPU and EMC current MHz, the slowest online CPU, whether locked."""
    cpus = [v["current"] for k, v in clocks.items() if k.lower().startswith("cpu")]
    key: dict[str, Any] = {k.lower() + "_mhz": round(v["current"]) for k, v in clocks.items() if k in ("GPU", "EMC")}
    if cpus:
        key["cpu_min_current_mhz"] = round(min(cpus))
    key["locked"] = all(v["current"] == v["max"] for k, v in clocks.items() if k in ("GPU", "EMC")) and bool(clocks)
    return key


_POWER = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*) (\d+)mW/(\d+)mW")
_TEMP = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C\b")
_GR3D = re.compile(r"GR3D_FREQ (\d+)%(?:@\[?(\d+))?")
_TOTAL_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0")


def parse_tegrastats_line(line: str) -> dict[str, Any] | None:
    """One tegrastats line: power rails (mW, instantaneous), temperatures (C), GPU load (%) and frequency
    (MHz, where this JetPack prints it: ``GR3D_FREQ 0%@[1300]`` or ``GR3D_FREQ 0%@1377``). Sensors that
    report -256C (powered off) are dropped. None for a line that is not tegrastats output."""
    rails = {m.group(1): int(m.group(2)) for m in _POWER.finditer(line)}
    temps = {m.group(1): float(m.group(2)) for m in _TEMP.finditer(line) if float(m.group(2)) > -200}
    gr3d = _GR3D.search(line)
    if not rails and not temps and not gr3d:
        return None
    total = next((rails[r] for r in _TOTAL_RAILS if r in rails), None)
    gpu_temp = next((v for k, v in temps.items() if k.lower() == "gpu"), None)
    return {
        "power_mw": rails,
        "total_power_mw": total,
        "temperature_c": temps,
        "gpu_temperature_c": gpu_temp,
        "gpu_load_pct": int(gr3d.group(1)) if gr3d else None,
        "gpu_mhz": int(gr3d.group(2)) if gr3d and gr3d.group(2) else None,
    }
