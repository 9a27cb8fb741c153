"""The board's state around a benchmark: model, L4T release, power mode, clocks, and tegrastats sampled in
the background. Missing tools are recorded with the reason instead of failing (stdlib, Python 3.8)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import threading
import time
from typing import Any, Sequence

from .parse import (
    clocks_key,
    parse_jetson_clocks,
    parse_nvpmodel_conf,
    parse_nvpmodel_query,
    parse_tegrastats_line,
)

__all__ = ["TegrastatsSampler", "board_state", "run_tool"]


def run_tool(args: Sequence[str], timeout_s: float = 20.0) -> tuple[str | None, str]:
    """(stdout, "") or (None, why): a tool that is missing, fails or needs root is a reason, not a crash."""
    exe = shutil.which(args[0])
    if exe is None:
        return None, "%s not found on PATH" % args[0]
    try:
        proc = subprocess.run([exe, *args[1:]], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, "%s could not run: %s" % (" ".join(args), exc)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        return None, "%s exited with %d: %s" % (" ".join(args), proc.returncode, tail[-1] if tail else "")
    return proc.stdout, ""


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read().replace(b"\x00", b"").decode("utf-8", "replace").strip() or None
    except OSError:
        return None


def board_state(root: str = "/", max_modes: Sequence[str] = (), with_clocks: bool = True) -> dict[str, Any]:
    """Model, L4T line, power mode (and whether it is the board's maximum), clocks parsed to MHz."""
    reasons: dict[str, str] = {}
    release = _read(os.path.join(root, "etc/nv_tegra_release"))
    state: dict[str, Any] = {
        "model": _read(os.path.join(root, "proc/device-tree/model")),
        "l4t": release.splitlines()[0] if release else None,
        "uname": platform.platform(),
        "python": platform.python_version(),
    }
    query, why = run_tool(["nvpmodel", "-q"])
    name, ident = parse_nvpmodel_query(query) if query else (None, None)
    if query is None:
        reasons["nvpmodel"] = why
    conf = _read(os.path.join(root, "etc/nvpmodel.conf")) or ""
    ids = parse_nvpmodel_conf(conf)
    max_id = next((ids[m] for m in max_modes if m in ids), None)
    state["power"] = {
        "mode": name,
        "mode_id": ident,
        "max_modes": list(max_modes),
        "max_mode_id": max_id,
        "at_max": (name in max_modes) if name is not None and max_modes else None,
    }
    if with_clocks:
        shown, why = run_tool(["jetson_clocks", "--show"])
        if shown is None:
            reasons["jetson_clocks"] = why + " (it usually needs root: run with sudo to record clocks)"
        clocks = parse_jetson_clocks(shown) if shown else {}
        state["clocks_mhz"] = clocks
        state["clocks_key"] = clocks_key(clocks) if clocks else None
    state["reasons"] = reasons
    return state


class TegrastatsSampler:
    """``tegrastats --interval MS`` in the background; every parsed line is kept with the time and the label
    of what was running (:meth:`mark`). Stopped with :meth:`stop` (the process we started, by its handle)."""

    def __init__(self, interval_ms: int = 500) -> None:
        self.interval_ms = interval_ms
        self.samples: list[dict[str, Any]] = []
        self.reason = ""
        self.label = ""
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._start = time.monotonic()

    def start(self) -> TegrastatsSampler:
        exe = shutil.which("tegrastats")
        if exe is None:
            self.reason = "tegrastats not found on PATH"
            return self
        try:
            self._proc = subprocess.Popen(
                [exe, "--interval", str(self.interval_ms)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                universal_newlines=True,
            )
        except OSError as exc:
            self.reason = "tegrastats could not start: %s" % exc
            return self
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def mark(self, label: str) -> None:
        self.label = label

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            sample = parse_tegrastats_line(line)
            if sample is not None:
                sample["t_s"] = round(time.monotonic() - self._start, 3)
                sample["during"] = self.label
                self.samples.append(sample)

    def stop(self) -> dict[str, Any]:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._proc is not None and not self.samples:
            self.reason = "tegrastats printed no line this reader understands"
        return {
            "interval_ms": self.interval_ms,
            "samples": self.samples,
            "summary": self.summary(),
            "reason": self.reason,
        }

    def summary(self) -> dict[str, Any]:
        def stats(values: list[float]) -> dict[str, float] | None:
            return {"mean": sum(values) / len(values), "max": max(values), "n": len(values)} if values else None

        timed = [s for s in self.samples if s["during"].startswith("bench")]
        return {
            "total_power_mw": stats([s["total_power_mw"] for s in timed if s["total_power_mw"] is not None]),
            "gpu_mhz": stats([s["gpu_mhz"] for s in timed if s["gpu_mhz"] is not None]),
            "gpu_temperature_c": stats([s["gpu_temperature_c"] for s in timed if s["gpu_temperature_c"] is not None]),
            "samples_during_bench": len(timed),
        }
