"""Build dense and pruned engines on the board, time them interleaved, write manifests and board.json.

The bundle's ``bundle.json`` (written on the host) lists every engine with its trtexec arguments per flag
family; the family is chosen here from the full TensorRT version trtexec reports. Each precision and batch
is timed in rounds dense, pruned, pruned, dense, ... (one ``trtexec --loadEngine`` per engine and round,
same settings), with tegrastats sampled throughout and clocks read before and after (stdlib, Python 3.8).
This module is the entry point (checks of the bundle, the release and the board; ``board.json``); the trtexec
runs themselves are in :mod:`.engines`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
from typing import Any

from . import ONBOARD_SCHEMA_VERSION
from .board import TegrastatsSampler, board_state
from .engines import Runner, Version, sha256_file, write_json
from .parse import parse_trtexec_version

__all__ = ["main"]

JETPACK_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"


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


def choose_family(plan: dict[str, Any], version: Version) -> str:
    for fam in plan["families"]:
        if version >= tuple(fam["min_version"]):
            return str(fam["name"])
    raise SystemExit("error: TensorRT %d.%d.%d is older than every flag family of this bundle" % version)


def _check_bundle(bundle: str, plan: dict[str, Any]) -> None:
    for rel, digest in sorted(plan["onnx"].items()):
        path = os.path.join(bundle, rel)
        if not os.path.isfile(path) or sha256_file(path) != digest:
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


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="cosep_onboard", description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--trtexec", default=None, help="trtexec to use (default: $TRTEXEC, JetPack's, then PATH)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds per pair (default: the bundle's)")
    ap.add_argument("--allow-other-release", action="store_true", help="run on a TensorRT outside the target's range")
    ap.add_argument("--root", default="/", help="where the board's /etc and /proc are (default /; for tests)")
    ap.add_argument("--verbose", action="store_true", help="run trtexec --verbose (its full logs: results/logs/)")
    return ap.parse_args(argv)


def _load_bundle(bundle: str, rounds: int | None) -> dict[str, Any]:
    """The bundle's plan (``bundle.json``), its ONNX files checked and the folders trtexec writes into made."""
    with open(os.path.join(bundle, "bundle.json")) as fh:
        plan: dict[str, Any] = json.load(fh)
    if rounds:
        plan["rounds"] = rounds
    _check_bundle(bundle, plan)
    for folder in ("engines", "results/times", "results/logs"):  # trtexec writes into them, it creates none
        os.makedirs(os.path.join(bundle, folder), exist_ok=True)
    return plan


def _trtexec_version(trtexec: str) -> Version:
    help_text = subprocess.run([trtexec, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    version = parse_trtexec_version(help_text)
    if version is None:
        raise SystemExit("error: cannot read the TensorRT version from '%s --help'" % trtexec)
    return version


def _check_release(version: Version, target: dict[str, Any], allow_other: bool) -> None:
    if not _in_range(version, target["tensorrt_range"]) and not allow_other:
        raise SystemExit(
            "error: this board has TensorRT %d.%d.%d, outside %s's range %s: use a bundle for this JetPack, or "
            "pass --allow-other-release" % ((*version, target["name"], target["tensorrt_range"]))
        )


def _check_dla(target: dict[str, Any], bindings: dict[str, Any]) -> None:
    dla = target.get("dla_core")
    if dla is not None and bindings.get("dla_cores") is not None and dla >= bindings["dla_cores"]:
        raise SystemExit(
            "error: this bundle builds for DLA core %d, but this board has %d DLA cores (tensorrt.Builder"
            ".num_DLA_cores): write the bundle with a target profile without DLA" % (dla, bindings["dla_cores"])
        )


def _print_setup(trtexec: str, version: Version, family: str, board: dict[str, Any], target: dict[str, Any]) -> None:
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


def _bench_and_profile(
    runner: Runner, plan: dict[str, Any], sampler: TegrastatsSampler
) -> tuple[list[dict[str, Any]], list[str]]:
    """Time every dense engine against the pruned one of the same precision and batch, then profile every
    built engine; a pair that fails is an error, the others still run."""
    pairs: list[dict[str, Any]] = []
    errors: list[str] = []
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
    return pairs, errors


def _print_tegrastats(tegra: dict[str, Any]) -> None:
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


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    bundle = os.path.abspath(args.bundle)
    plan = _load_bundle(bundle, args.rounds)
    trtexec = find_trtexec(args.trtexec)
    version = _trtexec_version(trtexec)
    target = plan["target"]
    _check_release(version, target, args.allow_other_release)
    family = choose_family(plan, version)
    bindings = tensorrt_bindings()
    package = bindings.get("package")
    _check_dla(target, bindings)
    board = board_state(args.root, max_modes=target["max_power_modes"])
    _print_setup(trtexec, version, family, board, target)
    runner = Runner(bundle, plan, trtexec, version, family)
    runner.verbose = args.verbose
    for engine in plan["engines"]:
        runner.build(engine, board, package)
    sampler = TegrastatsSampler().start()
    try:
        pairs, errors = _bench_and_profile(runner, plan, sampler)
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
    write_json(os.path.join(bundle, "results", "board.json"), result)
    if pairs:
        _print_table(pairs)
    _print_tegrastats(tegra)
    if runner.failed or errors:
        print("failed: %s" % "; ".join(runner.failed + errors), file=sys.stderr)
        return 1
    print("done: bring this folder's results/ and engines/*.manifest.json back (cosep-deploy collect)")
    return 0
