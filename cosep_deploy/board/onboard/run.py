"""Build dense and pruned engines on the board, time them interleaved, write manifests and board.json.

The bundle's ``bundle.json`` (written on the host) lists every engine with its trtexec arguments per flag
family; the family is chosen here from the full TensorRT version trtexec reports. Each precision and batch
is timed in rounds dense, pruned, pruned, dense, ... (one ``trtexec --loadEngine`` per engine and round,
same settings), with tegrastats sampled throughout and clocks read before and after (stdlib, Python 3.8).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
from typing import Any, Tuple

from . import ONBOARD_SCHEMA_VERSION
from .board import TegrastatsSampler, board_state
from .parse import parse_export_compute_ms, parse_trtexec_log, parse_trtexec_version
from .stats import paired_speedup, summarize_ms

__all__ = ["main"]

JETPACK_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"
Version = Tuple[int, int, int]


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json(path: str, data: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(path + ".tmp", path)


def _in_range(version: Version, spec: str | None) -> bool:
    for clause in (spec or "").split(","):
        m = re.match(r"\s*(>=|<=|==|>|<)\s*([\d.]+)\s*$", clause)
        if not m:
            continue
        bound = tuple(int(x) for x in m.group(2).split("."))
        have = tuple(version[: len(bound)]) if len(bound) <= 3 else tuple(version)
        ok = {">=": have >= bound, "<=": have <= bound, ">": have > bound, "<": have < bound, "==": have == bound}
        if not ok[m.group(1)]:
            return False
    return True


def find_trtexec(given: str | None) -> str:
    for candidate in (given, os.environ.get("TRTEXEC"), JETPACK_TRTEXEC):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    from shutil import which

    found = which("trtexec")
    if found:
        return found
    raise SystemExit(
        "error: trtexec not found at %s or on PATH (JetPack ships it: sudo apt install tensorrt); "
        "or pass --trtexec PATH" % JETPACK_TRTEXEC
    )


def tensorrt_bindings() -> dict[str, Any]:
    """What JetPack's own ``tensorrt`` Python bindings say, when installed: their version (four components)
    and the board's DLA core count (``Builder.num_DLA_cores``, which differs between modules of one board)."""
    try:
        import tensorrt  # JetPack's apt package on the board; not needed: trtexec alone is enough
    except Exception:  # missing, or a broken install
        return {}
    facts: dict[str, Any] = {"package": str(getattr(tensorrt, "__version__", "")) or None}
    try:
        builder = tensorrt.Builder(tensorrt.Logger(tensorrt.Logger.WARNING))
        facts["dla_cores"] = int(builder.num_DLA_cores)
    except Exception as exc:  # no GPU driver answers, for one
        facts["reason"] = "tensorrt.Builder could not be created: %s" % exc
    return facts


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
            "engine_sha256": _sha256(path),
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
        _write_json(os.path.join(self.bundle, "engines", engine["id"] + ".manifest.json"), manifest)

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


def choose_family(plan: dict[str, Any], version: Version) -> str:
    for fam in plan["families"]:
        if version >= tuple(fam["min_version"]):
            return str(fam["name"])
    raise SystemExit("error: TensorRT %d.%d.%d is older than every flag family of this bundle" % version)


def _check_bundle(bundle: str, plan: dict[str, Any]) -> None:
    for rel, digest in sorted(plan["onnx"].items()):
        path = os.path.join(bundle, rel)
        if not os.path.isfile(path) or _sha256(path) != digest:
            raise SystemExit(
                "error: %s is missing or changed since the bundle was written: copy the bundle again" % rel
            )


def _print_table(pairs: list[dict[str, Any]]) -> None:
    print("\nspeed-up of pruned over dense (GPU compute time, median; %d%% bootstrap interval)" % 95)
    print("%-10s %6s %12s %12s %8s %18s" % ("precision", "batch", "dense ms", "pruned ms", "speedup", "interval"))
    for p in pairs:
        s = p["speedup"]
        print(
            "%-10s %6d %12.4f %12.4f %7.3fx %8.3f - %.3f"
            % (
                p["precision"],
                p["batch"],
                p["dense_ms"]["median"],
                p["pruned_ms"]["median"],
                s["speedup"],
                s["ci_low"],
                s["ci_high"],
            )
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cosep_onboard", description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--trtexec", default=None, help="trtexec to use (default: $TRTEXEC, JetPack's, then PATH)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds per pair (default: the bundle's)")
    ap.add_argument("--allow-other-release", action="store_true", help="run on a TensorRT outside the target's range")
    ap.add_argument("--root", default="/", help="where the board's /etc and /proc are (default /; for tests)")
    ap.add_argument("--verbose", action="store_true", help="run trtexec --verbose (its full logs: results/logs/)")
    args = ap.parse_args(argv)
    bundle = os.path.abspath(args.bundle)
    with open(os.path.join(bundle, "bundle.json")) as fh:
        plan = json.load(fh)
    if args.rounds:
        plan["rounds"] = args.rounds
    _check_bundle(bundle, plan)
    for folder in ("engines", "results/times", "results/logs"):  # trtexec writes into them, it creates none
        os.makedirs(os.path.join(bundle, folder), exist_ok=True)
    trtexec = find_trtexec(args.trtexec)
    help_text = subprocess.run([trtexec, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    version = parse_trtexec_version(help_text)
    if version is None:
        raise SystemExit("error: cannot read the TensorRT version from '%s --help'" % trtexec)
    target = plan["target"]
    if not _in_range(version, target["tensorrt_range"]) and not args.allow_other_release:
        raise SystemExit(
            "error: this board has TensorRT %d.%d.%d, outside %s's range %s: use a bundle for this JetPack, or "
            "pass --allow-other-release" % ((*version, target["name"], target["tensorrt_range"]))
        )
    family = choose_family(plan, version)
    bindings = tensorrt_bindings()
    package = bindings.get("package")
    dla = target.get("dla_core")
    if dla is not None and bindings.get("dla_cores") is not None and dla >= bindings["dla_cores"]:
        raise SystemExit(
            "error: this bundle builds for DLA core %d, but this board has %d DLA cores (tensorrt.Builder"
            ".num_DLA_cores): write the bundle with a target profile without DLA" % (dla, bindings["dla_cores"])
        )
    board = board_state(args.root, max_modes=target["max_power_modes"])
    print(
        "trtexec %s: TensorRT %d.%d.%d (flags: %s); board: %s; power mode %s%s"
        % (
            trtexec,
            *version,
            family,
            board["model"],
            board["power"]["mode"],
            ""
            if board["power"]["at_max"] in (None, True)
            else " (not the maximum %s: sudo nvpmodel -m %s)"
            % ("/".join(target["max_power_modes"]), board["power"]["max_mode_id"]),
        )
    )
    for tool, why in board["reasons"].items():
        print("%s: not recorded (%s)" % (tool, why))
    runner = Runner(bundle, plan, trtexec, version, family)
    runner.verbose = args.verbose
    for engine in plan["engines"]:
        runner.build(engine, board, package)
    sampler = TegrastatsSampler().start()
    pairs: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        done = [e for e in plan["engines"] if e["id"] not in runner.failed and e["id"] not in runner.skipped]
        by_key = {(e["model"], e["precision"], e["batch"]): e for e in done}
        for (model, precision, batch), engine in sorted(by_key.items(), key=lambda kv: (kv[0][1], kv[0][2])):
            other = by_key.get(("pruned", precision, batch))
            if model != plan["baseline"] or other is None:
                continue
            try:
                pair = runner.bench_pair(engine, other, sampler)
            except (RuntimeError, ValueError) as exc:
                errors.append(str(exc))
                continue
            pair.update(precision=precision, batch=batch)
            pairs.append(pair)
        for engine in done:
            runner.profile(engine, sampler)
    finally:
        tegra = sampler.stop()
    after = board_state(args.root, max_modes=target["max_power_modes"])
    result = {
        "schema": "board_results",
        "schema_version": ONBOARD_SCHEMA_VERSION,
        "bundle_id": plan["bundle_id"],
        "target": target["name"],
        "tensorrt_version": "%d.%d.%d" % version,
        "tensorrt_package": package,
        "tensorrt_bindings": bindings,
        "trtexec": trtexec,
        "family": family,
        "board": board,
        "clocks_after": after.get("clocks_key"),
        "clocks_changed": board.get("clocks_key") != after.get("clocks_key"),
        "tegrastats": tegra,
        "engines": {e["id"]: runner.facts.get(e["id"]) for e in plan["engines"]},
        "failed": runner.failed,
        "skipped": runner.skipped,
        "errors": errors,
        "rounds": plan["rounds"],
        "pairs": pairs,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    _write_json(os.path.join(bundle, "results", "board.json"), result)
    if pairs:
        _print_table(pairs)
    summary = tegra["summary"]
    if summary["samples_during_bench"]:
        parts = [
            "%s %.1f (max %.1f)" % (label, summary[key]["mean"] * scale, summary[key]["max"] * scale)
            for key, label, scale in (
                ("total_power_mw", "power W", 1e-3),
                ("gpu_mhz", "GPU MHz", 1.0),
                ("gpu_temperature_c", "GPU C", 1.0),
            )
            if summary[key]
        ]
        print("tegrastats during timing: " + ", ".join(parts))
    else:
        print("tegrastats: not recorded (%s)" % (tegra["reason"] or "no sample during timing"))
    if runner.failed or errors:
        print("failed: %s" % "; ".join(runner.failed + errors), file=sys.stderr)
        return 1
    print("done: bring this folder's results/ and engines/*.manifest.json back (cosep-deploy collect)")
    return 0


def _mib_to_bytes(mib: Any) -> Any:
    """trtexec reports the device's global memory in MiB; the manifest records bytes, as the Python API does."""
    return None if mib is None else int(mib) * 1024 * 1024
