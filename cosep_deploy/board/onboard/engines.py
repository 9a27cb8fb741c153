"""Build, time and profile the bundle's engines on the board with trtexec: :class:`Runner`.

Each engine is built with the arguments of the chosen flag family, and its manifest written with the device
identity filled from trtexec's log. A dense and a pruned engine are timed in rounds dense, pruned, pruned,
dense, ... (one ``trtexec --loadEngine`` per engine and round, same settings), tegrastats marked per step.
Standard library only, Python 3.8 (the board's own).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
from typing import Any, Tuple

from .board import TegrastatsSampler
from .parse import parse_export_compute_ms, parse_trtexec_log
from .stats import paired_speedup, summarize_ms

__all__ = ["Runner", "Version", "sha256_file", "write_json"]

Version = Tuple[int, int, int]


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(path: str, data: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(path + ".tmp", path)


class Runner:
    """One on-board run over a bundle directory."""

    def __init__(self, bundle: str, plan: dict[str, Any], trtexec: str, version: Version, family: str) -> None:
        self.bundle, self.plan, self.trtexec = bundle, plan, trtexec
        self.version, self.family = version, family
        self.failed: list[str] = []
        self.skipped: dict[str, str] = {}  # engine id -> why this release cannot build it
        self.facts: dict[str, dict[str, Any]] = {}
        self.verbose = False  # trtexec --verbose in every run (its logs land in results/logs/)

    def trtexec_run(self, args: list[str], log: str, timeout_s: float) -> tuple[bool, str]:
        path = os.path.join(self.bundle, log)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            proc = subprocess.run(
                [self.trtexec, *args, *(["--verbose"] if self.verbose else [])],
                cwd=self.bundle,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout_s,
            )
            text, ok = proc.stdout, proc.returncode == 0 and "&&&& FAILED" not in proc.stdout
        except subprocess.TimeoutExpired:
            text, ok = "cosep_onboard: trtexec did not finish within %d s\n" % timeout_s, False
        with open(path, "w") as fh:
            fh.write(text)
        return ok, text

    def build(self, engine: dict[str, Any], board: dict[str, Any], package: str | None) -> None:
        """Build one engine with trtexec and write its manifest, the device identity filled from trtexec's log."""
        cmds = engine["commands"][self.family]
        why = engine.get("refused", {}).get(self.family)
        if why:
            self.skipped[engine["id"]] = why
            print("[%s] not built: %s" % (engine["id"], why))
            return
        print("[%s] building (log: %s)" % (engine["id"], engine["log"]), flush=True)
        ok, text = self.trtexec_run(cmds["build"], engine["log"], 3600)
        if not ok:
            self.failed.append(engine["id"])
            print("[%s] trtexec failed:\n  %s" % (engine["id"], "\n  ".join(text.strip().splitlines()[-8:])))
            return
        facts = parse_trtexec_log(text)
        self.facts[engine["id"]] = facts
        path = os.path.join(self.bundle, engine["engine"])
        release = "%d.%d.%d" % self.version
        filled = {
            "engine_sha256": sha256_file(path),
            "engine_bytes": os.path.getsize(path),
            "runtime_version": package if package and package.startswith(release) else release,
            "device_name": facts.get("device_name"),
            "compute_capability": facts.get("compute_capability"),
            "build_seconds": facts.get("build_seconds"),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "device_sm_count": facts.get("sm_count"),
            "device_memory_bytes": _mib_to_bytes(facts.get("total_memory_mib")),
            "board_model": board.get("model"),
            "power_mode": board["power"].get("mode"),
            "tensorrt_package_version": package or "trtexec %s" % release,
        }
        manifest = dict(engine["manifest"])
        for key in self.plan["fill_on_board"]:
            manifest[key] = filled.get(key)
        manifest["build_options"] = dict(
            manifest.get("build_options", {}), family=self.family, trtexec_args=cmds["build"]
        )
        missing = [k for k in self.plan["fill_on_board"] if manifest.get(k) in (None, "")]
        if missing:
            print("[%s] manifest fields trtexec did not report: %s" % (engine["id"], ", ".join(missing)))
        write_json(os.path.join(self.bundle, "engines", engine["id"] + ".manifest.json"), manifest)

    def bench_pair(self, dense: dict[str, Any], pruned: dict[str, Any], sampler: TegrastatsSampler) -> dict[str, Any]:
        """Rounds dense, pruned, pruned, dense, ...: iteration i of a round paired across the two engines."""
        rounds = int(self.plan["rounds"])
        print("[%s vs %s] %d interleaved rounds" % (dense["id"], pruned["id"], rounds), flush=True)
        series: dict[str, list[float]] = {dense["id"]: [], pruned["id"]: []}
        per_round: list[dict[str, float]] = []
        for r in range(rounds):
            got: dict[str, list[float]] = {}
            for engine in (dense, pruned) if r % 2 == 0 else (pruned, dense):
                times = "results/times/%s.r%d.json" % (engine["id"], r)
                args = [a.replace("@TIMES@", times) for a in engine["commands"][self.family]["bench"]]
                sampler.mark("bench %s round %d" % (engine["id"], r))
                ok, _ = self.trtexec_run(args, "results/logs/%s.r%d.log" % (engine["id"], r), 900)
                if not ok:
                    raise RuntimeError("trtexec failed benchmarking %s (round %d)" % (engine["id"], r))
                got[engine["id"]] = parse_export_compute_ms(os.path.join(self.bundle, times))
            keep = min(len(v) for v in got.values())
            for key, values in got.items():
                series[key] += values[:keep]
            per_round.append({k: sorted(v)[len(v) // 2] for k, v in got.items()})
        sampler.mark("")
        base, cand = series[dense["id"]], series[pruned["id"]]
        result = paired_speedup(base, cand, resamples=int(self.plan["resamples"]), seed=int(self.plan["seed"]))
        return {
            "dense": dense["id"],
            "pruned": pruned["id"],
            "speedup": result,
            "dense_ms": summarize_ms(base),
            "pruned_ms": summarize_ms(cand),
            "round_medians_ms": per_round,
        }

    def profile(self, engine: dict[str, Any], sampler: TegrastatsSampler) -> None:
        sampler.mark("profile %s" % engine["id"])
        ok, _ = self.trtexec_run(
            engine["commands"][self.family]["profile"], "results/logs/%s.profile.log" % engine["id"], 900
        )
        if not ok:
            print("[%s] per-layer profile failed (see results/logs/%s.profile.log)" % (engine["id"], engine["id"]))


def _mib_to_bytes(mib: Any) -> Any:
    """trtexec reports the device's global memory in MiB; the manifest records bytes, as the Python API does."""
    return None if mib is None else int(mib) * 1024 * 1024
